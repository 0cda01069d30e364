// A linearizability checker for histories of a key-value store whose keys are
// independent registers (write a value, read the value). Linearizability is
// compositional, so each key's history is checked alone.
//
// The search is Wing & Gong's, with Lowe's memoization: walk the history's call
// and return events in time order; at a call, try to linearize that operation
// now (the register must allow it, and the pair (set of operations linearized,
// register value) must not have been explored before); at a return whose
// operation is not linearized yet, undo the last choice. The history is
// linearizable when every operation has been placed.
//
// An operation whose outcome is unknown (a write that timed out, say) has no
// return: it may take effect at any point after its call, or never. Placing it
// after everything else is the same as "never" for the register, so it is given
// a return at +infinity. A read whose outcome is unknown tells nothing and is
// dropped.
//
// Left open to the end, every unknown write doubles the states the search may
// have to remember, and a long run under kills has hundreds. When its value is
// written by no other operation of the key, the reads settle it first (see
// settleUnknownWrites), which leaves the same linearizations.

export interface RegisterOp {
  /** Who issued it (for messages only). */
  client?: number | string;
  key: string;
  kind: 'write' | 'read';
  /** The value written, or the value the read returned (null: the key had none). */
  value: string | null;
  /** When the call began (any monotonic clock). */
  invoke: number;
  /** When the answer arrived; null when the outcome is unknown. */
  complete: number | null;
}

export interface CheckResult {
  ok: boolean;
  /** Keys checked, and operations in them. */
  keys: number;
  ops: number;
  /** When not ok: the first key whose history has no linearization, and its operations. */
  key?: string;
  history?: RegisterOp[];
}

export interface CheckOptions {
  /** The value of every key before the history. Default null (absent). */
  initial?: string | null;
  /** Search steps per key before giving up with an error (the problem is NP-complete). Default: 200 per operation, at least 2,000,000. */
  maxSteps?: number;
}

/** What the search may remember, in characters of memo keys, before it gives up with an error rather than exhaust the heap. */
const MAX_MEMO_CHARS = 200_000_000;

interface Entry {
  op: number;
  call: boolean;
  time: number;
  /** The call's return, or the return's call. */
  match: Entry | null;
  prev: Entry | null;
  next: Entry | null;
}

/** Checks the whole history, key by key. */
export function checkRegisters(history: readonly RegisterOp[], o: CheckOptions = {}): CheckResult {
  const byKey = new Map<string, RegisterOp[]>();
  for (const op of history) {
    if (op.complete === null && op.kind === 'read') continue;
    if (op.complete !== null && op.complete < op.invoke) throw new RangeError(`an operation completes before it is invoked: ${JSON.stringify(op)}`);
    let list = byKey.get(op.key);
    if (list === undefined) byKey.set(op.key, (list = []));
    list.push(op);
  }
  let ops = 0;
  for (const [key, list] of byKey) {
    ops += list.length;
    if (!linearizable(list, o.initial ?? null, o.maxSteps)) return { ok: false, keys: byKey.size, ops, key, history: list };
  }
  return { ok: true, keys: byKey.size, ops };
}

/** One register's history. */
export function linearizable(history: readonly RegisterOp[], initial: string | null, maxSteps = Math.max(2_000_000, 200 * history.length)): boolean {
  const ops = settleUnknownWrites(history, initial);
  if (ops === null) return false;
  const n = ops.length;
  if (n === 0) return true;
  // Build the event list: calls before returns at the same instant (two such operations
  // count as concurrent, the lenient reading of a tie).
  const events: Entry[] = [];
  ops.forEach((op, i) => {
    const call: Entry = { op: i, call: true, time: op.invoke, match: null, prev: null, next: null };
    const ret: Entry = { op: i, call: false, time: op.complete ?? Number.POSITIVE_INFINITY, match: call, prev: null, next: null };
    call.match = ret;
    events.push(call, ret);
  });
  events.sort((a, b) => a.time - b.time || (a.call === b.call ? a.op - b.op : a.call ? -1 : 1));
  const head: Entry = { op: -1, call: false, time: -Infinity, match: null, prev: null, next: null };
  let prev = head;
  for (const e of events) {
    prev.next = e;
    e.prev = prev;
    prev = e;
  }

  const lift = (call: Entry): void => {
    call.prev!.next = call.next;
    if (call.next !== null) call.next.prev = call.prev;
    const ret = call.match!;
    ret.prev!.next = ret.next;
    if (ret.next !== null) ret.next.prev = ret.prev;
  };
  const unlift = (call: Entry): void => {
    const ret = call.match!;
    ret.prev!.next = ret;
    if (ret.next !== null) ret.next.prev = ret;
    call.prev!.next = call;
    if (call.next !== null) call.next.prev = call;
  };

  const linearized = new LinearizedSet(n);
  const seen = new Set<string>();
  let memoChars = 0;
  const memoKey = (state: string | null): string => `${linearized.key()}|${state === null ? '\u0000' : `=${state}`}`;
  const stack: Array<{ call: Entry; state: string | null }> = [];
  let state = initial;
  let entry = head.next;
  let steps = 0;
  while (head.next !== null) {
    if (++steps > maxSteps) throw new Error(`linearizability search gave up after ${maxSteps} steps on a history of ${n} operations`);
    const e = entry!;
    if (e.call) {
      const op = ops[e.op]!;
      const allowed = op.kind === 'write' || op.value === state;
      if (allowed) {
        const next = op.kind === 'write' ? op.value : state;
        linearized.toggle(e.op);
        const k = memoKey(next);
        if (!seen.has(k)) {
          seen.add(k);
          memoChars += k.length;
          if (memoChars > MAX_MEMO_CHARS)
            throw new Error(`linearizability search gave up: its memo outgrew ${MAX_MEMO_CHARS} characters on a history of ${n} operations`);
          stack.push({ call: e, state });
          state = next;
          lift(e);
          entry = head.next;
          continue;
        }
        linearized.toggle(e.op);
      }
      entry = e.next;
    } else {
      // A return of an operation not yet placed: every order tried from here fails.
      const top = stack.pop();
      if (top === undefined) return false;
      state = top.state;
      linearized.toggle(top.call.op);
      unlift(top.call);
      entry = top.call.next;
    }
  }
  return true;
}

/**
 * The operations linearized so far, as a short memo key: a 96-bit Zobrist hash (each operation
 * has three random words, XORed in when it joins the set and out when it leaves). An exact key
 * grows with the operations placed while an earlier one is still pending, even one that names
 * only those, and one slow call during a partition overlaps thousands: a chaos run's keys then
 * filled the heap. Two sets of one search sharing a hash (odds about 1 in 10^28 per pair) could
 * only make the search skip a state it had not explored: hide a linearization, never invent one.
 */
class LinearizedSet {
  private readonly words: Uint32Array;
  private h0 = 0;
  private h1 = 0;
  private h2 = 0;

  constructor(n: number) {
    this.words = new Uint32Array(3 * n);
    // A fixed xorshift32 stream: the same history always searches the same way.
    let x = 0x9e3779b9;
    for (let i = 0; i < this.words.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      this.words[i] = x >>> 0;
    }
  }

  /** Adds operation i if absent, removes it if present. */
  toggle(i: number): void {
    this.h0 = (this.h0 ^ this.words[3 * i]!) >>> 0;
    this.h1 = (this.h1 ^ this.words[3 * i + 1]!) >>> 0;
    this.h2 = (this.h2 ^ this.words[3 * i + 2]!) >>> 0;
  }

  key(): string {
    return `${this.h0.toString(36)},${this.h1.toString(36)},${this.h2.toString(36)}`;
  }
}

/**
 * Unknown writes whose value no other write of the key writes (and the initial value is not),
 * settled by the reads: one whose value no read returned changed nothing a read saw, and may go
 * last, which is the same as never, so it is dropped; one whose value a completed read returned
 * took effect before that read did, so it returns when the earliest such read does. Null when a
 * read returned the value before the write was called: no linearization.
 */
function settleUnknownWrites(ops: readonly RegisterOp[], initial: string | null): readonly RegisterOp[] | null {
  if (!ops.some((o) => o.kind === 'write' && o.complete === null)) return ops;
  const writers = new Map<string | null, number>();
  for (const o of ops) if (o.kind === 'write') writers.set(o.value, (writers.get(o.value) ?? 0) + 1);
  // Per value a read returned: the earliest completion among those reads (+infinity if none completed).
  const reads = new Map<string | null, number>();
  for (const o of ops) {
    if (o.kind !== 'read') continue;
    const t = o.complete ?? Number.POSITIVE_INFINITY;
    reads.set(o.value, Math.min(reads.get(o.value) ?? Number.POSITIVE_INFINITY, t));
  }
  const out: RegisterOp[] = [];
  for (const o of ops) {
    if (o.kind !== 'write' || o.complete !== null || writers.get(o.value) !== 1 || o.value === initial) {
      out.push(o);
      continue;
    }
    const seenBy = reads.get(o.value);
    if (seenBy === undefined) continue; // never read: dropped
    if (seenBy === Number.POSITIVE_INFINITY)
      out.push(o); // read only by reads of unknown outcome: left open
    else if (seenBy < o.invoke) return null;
    else out.push({ ...o, complete: seenBy });
  }
  return out;
}

/** A short, readable rendering of a failing key's history, for an assertion message. */
export function describeHistory(ops: readonly RegisterOp[], limit = 40): string {
  const t0 = Math.min(...ops.map((o) => o.invoke));
  return [...ops]
    .sort((a, b) => a.invoke - b.invoke)
    .slice(0, limit)
    .map(
      (o) =>
        `${String(o.client ?? '?')} ${o.kind} ${o.key}=${String(o.value)} [${(o.invoke - t0).toFixed(1)}, ${o.complete === null ? '?' : (o.complete - t0).toFixed(1)}]`,
    )
    .join('\n');
}
