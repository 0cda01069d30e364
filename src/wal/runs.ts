// A value that changes rarely along the log (an entry's term, the segment it
// is in), stored once per run of equal values instead of once per entry: a
// log of a million entries in a handful of terms and segments keeps a handful
// of runs. The lookups that matter (the last entries) take the last run
// without a search; older ones search the runs' starts.
//
// Nothing bounds the number of runs but the entries themselves: a log whose
// every entry has a new term keeps a run per entry, as a column would.

export class Runs {
  /** First index of each run, ascending. */
  private firsts: number[] = [];
  private values: number[] = [];

  /** Runs kept (for tests). */
  get size(): number {
    return this.firsts.length;
  }

  /** The value at `index`, which must be at or above the first run's start. */
  at(index: number): number {
    const f = this.firsts;
    let hi = f.length - 1;
    if (index >= f[hi]!) return this.values[hi]!;
    let lo = 0; // f[lo] <= index < f[hi]
    while (hi - lo > 1) {
      const mid = (lo + hi) >>> 1;
      if (f[mid]! <= index) lo = mid;
      else hi = mid;
    }
    return this.values[lo]!;
  }

  /** `index` (after every run's start) holds `value`. */
  push(index: number, value: number): void {
    const n = this.values.length;
    if (n > 0 && this.values[n - 1] === value) return;
    this.firsts.push(index);
    this.values.push(value);
  }

  /** Forgets the values after `index`. */
  truncateAfter(index: number): void {
    const f = this.firsts;
    let n = f.length;
    while (n > 0 && f[n - 1]! > index) n--;
    if (n < f.length) {
      this.firsts = f.slice(0, n);
      this.values = this.values.slice(0, n);
    }
  }

  /** Forgets the runs that end below `index`. */
  dropBefore(index: number): void {
    const f = this.firsts;
    let k = 0;
    while (k + 1 < f.length && f[k + 1]! <= index) k++;
    if (k > 0) {
      this.firsts = f.slice(k);
      this.values = this.values.slice(k);
    }
  }

  /** Only `index` holds a value: `value`. */
  reset(index: number, value: number): void {
    this.firsts = [index];
    this.values = [value];
  }

  /** No index holds a value. */
  clear(): void {
    this.firsts = [];
    this.values = [];
  }

  /**
   * `index`, the first index held, now holds `value`; the indexes after it
   * (`more`: there are some) keep theirs.
   */
  setFirst(index: number, value: number, more: boolean): void {
    if (this.values[0] === value) return;
    if (!more || this.firsts[1] === index + 1) {
      this.firsts[0] = index;
      this.values[0] = value;
      return;
    }
    this.firsts[0] = index + 1;
    this.firsts.unshift(index);
    this.values.unshift(value);
  }
}
