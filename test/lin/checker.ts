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
  /** Search steps per key before giving up with an error (the problem is NP-complete). Default 2,000,000. */
  maxSteps?: number;
}

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
    if (!linearizable(list, o.initial ?? null, o.maxSteps ?? 2_000_000)) return { ok: false, keys: byKey.size, ops, key, history: list };
  }
  return { ok: true, keys: byKey.size, ops };
}

/** One register's history. */
export function linearizable(ops: readonly RegisterOp[], initial: string | null, maxSteps = 2_000_000): boolean {
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

  const words = Math.ceil(n / 32);
  const linearized = new Uint32Array(words);
  const seen = new Set<string>();
  const memoKey = (state: string | null): string => {
    let k = '';
    for (let w = 0; w < words; w++) k += linearized[w]!.toString(36) + ',';
    return `${k}|${state === null ? '\u0000' : `=${state}`}`;
  };
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
        linearized[e.op >> 5]! |= 1 << (e.op & 31);
        const k = memoKey(next);
        if (!seen.has(k)) {
          seen.add(k);
          stack.push({ call: e, state });
          state = next;
          lift(e);
          entry = head.next;
          continue;
        }
        linearized[e.op >> 5]! &= ~(1 << (e.op & 31));
      }
      entry = e.next;
    } else {
      // A return of an operation not yet placed: every order tried from here fails.
      const top = stack.pop();
      if (top === undefined) return false;
      state = top.state;
      linearized[top.call.op >> 5]! &= ~(1 << (top.call.op & 31));
      unlift(top.call);
      entry = top.call.next;
    }
  }
  return true;
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
