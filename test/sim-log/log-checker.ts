// What a user of the replicated log is promised, checked from the outside:
// from what each node's state machine was handed and what each append
// returned. It trusts nothing the nodes say about themselves.
//
//  - one sequence: every node applies, at each index, the record every other
//    node applied there, and no record lands at two indexes;
//  - in order, once: within one lifetime (a process run, which starts from the
//    restored snapshot) a node applies each index at most once, ascending;
//  - acknowledged means committed: an append that resolved { index, term } has
//    its record at that index and term, and it is never lost (finish());
//  - not committed means not committed: an append rejected with
//    APPEND_NOT_COMMITTED never appears.

interface Committed {
  payload: string;
  term: number;
  node: number;
}

export type Applied = [index: number, payload: string];

export class LogChecker {
  readonly violations: string[] = [];
  private readonly committed = new Map<number, Committed>();
  private readonly indexOf = new Map<string, number>();
  private readonly acked = new Map<string, { index: number; term: number }>();
  private readonly notCommitted = new Set<string>();
  /** Highest index each node applied in its current lifetime. */
  private readonly lastApplied = new Map<number, number>();

  constructor(private readonly now: () => number = () => 0) {}

  /** Highest index any node applied. */
  get commitIndex(): number {
    let max = 0;
    for (const i of this.committed.keys()) max = Math.max(max, i);
    return max;
  }

  get ackedCount(): number {
    return this.acked.size;
  }

  /** The common sequence of records, by index. */
  sequence(): Applied[] {
    return [...this.committed].map(([i, c]): Applied => [i, c.payload]).sort((a, b) => a[0] - b[0]);
  }

  /** Highest index node `node` applied in its current lifetime (its snapshot's index right after a restore). */
  applied(node: number): number {
    return this.lastApplied.get(node) ?? 0;
  }

  /** A barrier() on `node` resolved; every append acknowledged before it was called ended at or below `readPoint`. */
  barrier(node: number, readPoint: number): void {
    const applied = this.applied(node);
    if (applied < readPoint)
      this.fail(`barrier on node ${node} resolved with ${applied} applied, but an append acknowledged before it began is at ${readPoint} (stale read)`);
  }

  /** Node `node` (re)started: a new lifetime that has applied nothing yet. */
  lifetime(node: number): void {
    this.lastApplied.set(node, 0);
  }

  /** The node's state machine was replaced by a snapshot taken at `index` holding `records`. */
  restore(node: number, index: number, records: Applied[]): void {
    const last = this.lastApplied.get(node) ?? 0;
    if (index < last) this.fail(`node ${node} restored a snapshot at ${index} after applying ${last} in this lifetime`);
    let prev = 0;
    for (const [i, payload] of records) {
      if (i <= prev || i > index) this.fail(`node ${node} restored a snapshot at ${index} holding a record at ${i} (after ${prev})`);
      prev = i;
      this.record(node, i, undefined, payload);
    }
    this.lastApplied.set(node, index);
  }

  /** The node's state machine applied `payload` at `index`. */
  apply(node: number, index: number, term: number, payload: string): void {
    const last = this.lastApplied.get(node) ?? 0;
    if (index <= last) this.fail(`node ${node} applied index ${index} after ${last} in one lifetime (twice or out of order)`);
    this.lastApplied.set(node, Math.max(last, index));
    this.record(node, index, term, payload);
  }

  /** A reader of log.entries() on `node` got `payload` at `index`; `prev` is the index it got before (from - 1 at its start). */
  streamed(node: number, index: number, prev: number, payload: string): void {
    if (index <= prev) this.fail(`entries() on node ${node} yielded index ${index} after ${prev}`);
    // The stream is exactly the committed records, in order: one it passed over is lost to its reader.
    // (It yields only what this node applied, so every record before `index` is known here by now.)
    for (let i = prev + 1; i < index; i++) {
      const skipped = this.committed.get(i);
      if (skipped !== undefined) {
        this.fail(`entries() on node ${node} skipped ${skipped.payload} at ${i} (yielded ${index} after ${prev})`);
        break;
      }
    }
    const c = this.committed.get(index);
    if (c === undefined) this.fail(`entries() on node ${node} yielded ${payload} at ${index}, which no state machine has applied`);
    else if (c.payload !== payload) this.fail(`entries() on node ${node} yielded ${payload} at ${index}, but ${c.payload} is committed there`);
  }

  /** An append of `payload` resolved with this position. */
  ack(payload: string, index: number, term: number): void {
    this.acked.set(payload, { index, term });
    const c = this.committed.get(index);
    if (c === undefined) this.fail(`append ${payload} resolved at ${index}/${term} but no node has applied index ${index}`);
    else if (c.payload !== payload || (c.term >= 0 && c.term !== term)) {
      this.fail(`append ${payload} resolved at ${index}/${term} but ${c.payload}/${c.term} is committed there`);
    }
  }

  /** An append of `payload` rejected with APPEND_NOT_COMMITTED. */
  rejectedNotCommitted(payload: string): void {
    this.notCommitted.add(payload);
    const at = this.indexOf.get(payload);
    if (at !== undefined) this.fail(`append ${payload} rejected as not committed, but it is committed at ${at}`);
  }

  /**
   * Once every node has applied at least `upTo`: each node's whole history of
   * records (its state machine, restored snapshots included) up to `upTo` is the
   * common sequence, and every acknowledged record up to there is in it.
   */
  finish(histories: Map<number, Applied[]>, upTo: number): void {
    const expected = this.sequence().filter(([i]) => i <= upTo);
    const want = JSON.stringify(expected);
    for (const [node, h] of histories) {
      const got = h.filter(([i]) => i <= upTo);
      if (JSON.stringify(got) !== want) {
        const k = firstDifference(got, expected);
        this.fail(`node ${node}'s history differs from the common sequence at position ${k}: ${JSON.stringify(got[k])} vs ${JSON.stringify(expected[k])}`);
      }
    }
    for (const [node, h] of histories) {
      const at = new Map(h.filter(([i]) => i <= upTo).map(([i, p]) => [p, i]));
      for (const [payload, pos] of this.acked) {
        if (pos.index <= upTo && at.get(payload) !== pos.index)
          this.fail(`acknowledged append ${payload} at ${pos.index} is missing from node ${node}'s final history`);
      }
      for (const payload of this.notCommitted) {
        if (at.has(payload)) this.fail(`append ${payload} was rejected as not committed but is in node ${node}'s final history`);
      }
    }
  }

  private record(node: number, index: number, term: number | undefined, payload: string): void {
    const c = this.committed.get(index);
    if (c === undefined) {
      this.committed.set(index, { payload, term: term ?? -1, node });
    } else {
      if (c.payload !== payload) this.fail(`divergence at index ${index}: node ${node} has ${payload}, node ${c.node} had ${c.payload}`);
      else if (term !== undefined && c.term >= 0 && c.term !== term)
        this.fail(`index ${index} applied with term ${term} on node ${node}, ${c.term} on node ${c.node}`);
      else if (c.term < 0 && term !== undefined) c.term = term;
    }
    const at = this.indexOf.get(payload);
    if (at === undefined) this.indexOf.set(payload, index);
    else if (at !== index) this.fail(`record ${payload} is committed twice: at ${at} and at ${index} (node ${node})`);
    if (this.notCommitted.has(payload)) this.fail(`append ${payload} was rejected as not committed but node ${node} applied it at ${index}`);
  }

  private fail(what: string): void {
    if (this.violations.length < 50) this.violations.push(`t=${this.now()}ms ${what}`);
  }
}

function firstDifference(a: Applied[], b: Applied[]): number {
  let k = 0;
  while (k < a.length && k < b.length && a[k]![0] === b[k]![0] && a[k]![1] === b[k]![1]) k++;
  return k;
}
