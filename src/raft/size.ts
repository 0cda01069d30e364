// How big an entry counts for message, window and apply-batch limits. The same
// measure must be used by the core and by every Storage, so it lives here.
import type { Entry } from './types.js';

/** Fixed cost per entry (index, term, type, length) on top of its payload. */
export const ENTRY_OVERHEAD = 24;

// Sizes read `.length`: on a Uint8Array it equals byteLength, which Node 20's optimizer
// does not inline (a call into the engine, about 10x as long, per entry).

export function entrySize(e: Entry): number {
  return e.data.length + ENTRY_OVERHEAD;
}

/**
 * Total size of `ents`, each entry counted as entrySize() does: the measure of windows and of
 * MaxUncommittedEntriesSize, where an empty entry must cost something too, or a stream of
 * empty proposals would grow the uncommitted log without bound.
 */
export function entriesSize(ents: readonly Entry[]): number {
  let n = ENTRY_OVERHEAD * ents.length;
  for (let i = 0; i < ents.length; i++) n += ents[i]!.data.length;
  return n;
}

/**
 * How many entries of `ents[from..to)` fit in `maxSize` bytes; always at least
 * one, so that a single oversized entry still moves.
 */
export function countWithin(ents: readonly Entry[], from: number, to: number, maxSize: number): number {
  let size = 0;
  let i = from;
  for (; i < to; i++) {
    size += entrySize(ents[i]!);
    if (size > maxSize && i > from) break;
  }
  return i - from;
}
