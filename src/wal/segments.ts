// The segment files of a log, oldest first, and the highest entry each one holds:
// reads find a file by its sequence number, and a release deletes the oldest files
// whose entries are all compacted away.

export interface Segment {
  seq: number;
  firstIndex: number;
  name: string;
  /** Highest entry index written to it (firstIndex - 1 if none). */
  maxIndex: number;
  /** Its stamp, for a segment this instance began (TAIL names it by it). */
  stamp?: number;
}

export class Segments {
  readonly #list: Segment[] = [];
  readonly #bySeq = new Map<number, Segment>();

  get length(): number {
    return this.#list.length;
  }

  get first(): Segment | undefined {
    return this.#list[0];
  }

  get last(): Segment | undefined {
    return this.#list.at(-1);
  }

  /** By position, oldest first. */
  at(k: number): Segment | undefined {
    return this.#list[k];
  }

  bySeq(seq: number): Segment | undefined {
    return this.#bySeq.get(seq);
  }

  push(s: Segment): void {
    this.#list.push(s);
    this.#bySeq.set(s.seq, s);
  }

  /** Forgets the oldest segments that hold nothing above `index`, always keeping the last; returns their names. */
  releaseTo(index: number): string[] {
    const names: string[] = [];
    while (this.#list.length > 1 && this.#list[0]!.maxIndex <= index) {
      const s = this.#list.shift()!;
      this.#bySeq.delete(s.seq);
      names.push(s.name);
    }
    return names;
  }
}
