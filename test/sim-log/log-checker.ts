// What a user of the replicated log is promised, checked from the outside:
// from what each node's state machine was handed and what each append
// returned. It trusts nothing the nodes say about themselves.
//
//  - one sequence: every node applies, at each position, the record every other
//    node applied there, and no record lands at two positions;
//  - in order, once: within one lifetime (a process run, which starts from the
//    restored snapshot) a node applies each position at most once, ascending;
//  - acknowledged means committed: an append that resolved { index, offset, term }
//    has its record at that position and term, and it is never lost (finish());
//  - not committed means not committed: an append rejected with
//    APPEND_NOT_COMMITTED never appears.
//
// A record's position (index, offset) is one number here, index * 2^20 + offset,
// which orders like the pair: a batch holds fewer than 2^20 records.

const PER_INDEX = 2 ** 20;

/** A record's position as one number. */
export function position(index: number, offset: number): number {
  return index * PER_INDEX + offset;
}

/** The last position an entry at `index` can hold: where a snapshot at `index` ends. */
export function endOf(index: number): number {
  return position(index + 1, 0) - 1;
}

export function indexOf(pos: number): number {
  return Math.floor(pos / PER_INDEX);
}

/** index.offset, for messages. */
export function show(pos: number): string {
  return pos % PER_INDEX === PER_INDEX - 1 ? `${indexOf(pos)}.end` : `${indexOf(pos)}.${pos % PER_INDEX}`;
}

interface Committed {
  payload: string;
  term: number;
  node: number;
}

export type Applied = [position: number, payload: string];

export class LogChecker {
  readonly violations: string[] = [];
  private readonly committed = new Map<number, Committed>();
  private readonly positionOf = new Map<string, number>();
  private readonly acked = new Map<string, { pos: number; term: number }>();
  private readonly notCommitted = new Set<string>();
  /** Highest position each node applied in its current lifetime. */
  private readonly lastApplied = new Map<number, number>();

  constructor(private readonly now: () => number = () => 0) {}

  /** Highest index any node applied a record at. */
  get commitIndex(): number {
    let max = 0;
    for (const p of this.committed.keys()) max = Math.max(max, p);
    return indexOf(max);
  }

  get ackedCount(): number {
    return this.acked.size;
  }

  /** The common sequence of records, by position. */
  sequence(): Applied[] {
    return [...this.committed].map(([i, c]): Applied => [i, c.payload]).sort((a, b) => a[0] - b[0]);
  }

  /** Highest position node `node` applied in its current lifetime (its snapshot's end right after a restore). */
  applied(node: number): number {
    return this.lastApplied.get(node) ?? 0;
  }

  /** A barrier() on `node` resolved; every append acknowledged before it was called is at or below position `readPoint`. */
  barrier(node: number, readPoint: number): void {
    const applied = this.applied(node);
    if (applied < readPoint)
      this.fail(
        `barrier on node ${node} resolved with ${show(applied)} applied, but an append acknowledged before it began is at ${show(readPoint)} (stale read)`,
      );
  }

  /** Node `node` (re)started: a new lifetime that has applied nothing yet. */
  lifetime(node: number): void {
    this.lastApplied.set(node, 0);
  }

  /** The node's state machine was replaced by a snapshot taken at entry `index` holding `records`. */
  restore(node: number, index: number, records: Applied[]): void {
    const end = endOf(index);
    const last = this.lastApplied.get(node) ?? 0;
    if (end < last) this.fail(`node ${node} restored a snapshot at ${index} after applying ${show(last)} in this lifetime`);
    let prev = 0;
    for (const [p, payload] of records) {
      if (p <= prev || p > end) this.fail(`node ${node} restored a snapshot at ${index} holding a record at ${show(p)} (after ${show(prev)})`);
      prev = p;
      this.record(node, p, undefined, payload);
    }
    this.lastApplied.set(node, end);
  }

  /** The node's state machine applied `payload` at position `pos`. */
  apply(node: number, pos: number, term: number, payload: string): void {
    const last = this.lastApplied.get(node) ?? 0;
    if (pos <= last) this.fail(`node ${node} applied ${show(pos)} after ${show(last)} in one lifetime (twice or out of order)`);
    this.lastApplied.set(node, Math.max(last, pos));
    this.record(node, pos, term, payload);
  }

  /** A reader of log.entries() on `node` got `payload` at `pos`; `prev` is the position it got before (position(from, 0) - 1 at its start). */
  streamed(node: number, pos: number, prev: number, payload: string): void {
    if (pos <= prev) this.fail(`entries() on node ${node} yielded ${show(pos)} after ${show(prev)}`);
    // The stream is exactly the committed records, in order: one it passed over is lost to its reader.
    // (It yields only what this node applied, so every record before `pos` is known here by now.)
    // An entry's records fill its offsets from 0, so the first position missing ends the entry.
    for (let p = prev + 1; p < pos; p = position(indexOf(p) + 1, 0)) {
      const skipped = this.committed.get(p);
      if (skipped !== undefined) {
        this.fail(`entries() on node ${node} skipped ${skipped.payload} at ${show(p)} (yielded ${show(pos)} after ${show(prev)})`);
        break;
      }
    }
    const c = this.committed.get(pos);
    if (c === undefined) this.fail(`entries() on node ${node} yielded ${payload} at ${show(pos)}, which no state machine has applied`);
    else if (c.payload !== payload) this.fail(`entries() on node ${node} yielded ${payload} at ${show(pos)}, but ${c.payload} is committed there`);
  }

  /** An append of `payload` resolved at position `pos`. */
  ack(payload: string, pos: number, term: number): void {
    this.acked.set(payload, { pos, term });
    const c = this.committed.get(pos);
    if (c === undefined) this.fail(`append ${payload} resolved at ${show(pos)}/${term} but no node has applied there`);
    else if (c.payload !== payload || (c.term >= 0 && c.term !== term)) {
      this.fail(`append ${payload} resolved at ${show(pos)}/${term} but ${c.payload}/${c.term} is committed there`);
    }
  }

  /** An append of `payload` rejected with APPEND_NOT_COMMITTED. */
  rejectedNotCommitted(payload: string): void {
    this.notCommitted.add(payload);
    const at = this.positionOf.get(payload);
    if (at !== undefined) this.fail(`append ${payload} rejected as not committed, but it is committed at ${show(at)}`);
  }

  /**
   * Once every node has applied at least entry `upToIndex`: each node's whole history
   * of records (its state machine, restored snapshots included) through that entry is
   * the common sequence, and every acknowledged record up to there is in it.
   */
  finish(histories: Map<number, Applied[]>, upToIndex: number): void {
    const upTo = endOf(upToIndex);
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
        if (pos.pos <= upTo && at.get(payload) !== pos.pos)
          this.fail(`acknowledged append ${payload} at ${show(pos.pos)} is missing from node ${node}'s final history`);
      }
      for (const payload of this.notCommitted) {
        if (at.has(payload)) this.fail(`append ${payload} was rejected as not committed but is in node ${node}'s final history`);
      }
    }
  }

  private record(node: number, pos: number, term: number | undefined, payload: string): void {
    const c = this.committed.get(pos);
    if (c === undefined) {
      this.committed.set(pos, { payload, term: term ?? -1, node });
    } else {
      if (c.payload !== payload) this.fail(`divergence at ${show(pos)}: node ${node} has ${payload}, node ${c.node} had ${c.payload}`);
      else if (term !== undefined && c.term >= 0 && c.term !== term)
        this.fail(`${show(pos)} applied with term ${term} on node ${node}, ${c.term} on node ${c.node}`);
      else if (c.term < 0 && term !== undefined) c.term = term;
    }
    const at = this.positionOf.get(payload);
    if (at === undefined) this.positionOf.set(payload, pos);
    else if (at !== pos) this.fail(`record ${payload} is committed twice: at ${show(at)} and at ${show(pos)} (node ${node})`);
    if (this.notCommitted.has(payload)) this.fail(`append ${payload} was rejected as not committed but node ${node} applied it at ${show(pos)}`);
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
