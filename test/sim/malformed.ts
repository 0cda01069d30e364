// Malformed messages for the simulator's garbage fault: each is a real message
// broken in one way a correct sender never produces, so the core must refuse it.
import { EntryType, type Message } from '../../src/raft/types.js';
import type { Prng } from './prng.js';

/** A copy of `m` broken in one way a correct sender never produces. */
export function corrupt(m: Message, rng: Prng): { what: string; msg: unknown } {
  const broken: [string, Record<string, unknown>][] = [
    ['unknown type 99', { type: 99 }],
    ['a negative term', { term: -1 }],
    ['a fractional index', { index: m.index + 0.5 }],
    ['commit NaN', { commit: Number.NaN }],
    ['entries null', { entries: null }],
    ['the wrong addressee', { to: m.to + 100 }],
    ['reject as a string', { reject: 'no' }],
    ['a string context', { context: 'ctx' }],
    ['a snapshot without meta', { snapshot: { data: new Uint8Array(0), meta: null } }],
    ['an entry whose data is a string', { entries: [{ index: m.index + 1, term: m.term, type: EntryType.Normal, data: 'x' }] }],
  ];
  const [what, patch] = rng.pick(broken);
  return { what, msg: { ...m, ...patch } };
}
