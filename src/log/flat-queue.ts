// Queues of numbers kept as one flat array and a head index (records of a few
// numbers each, consumed from the front): no object per record. What the head
// has passed is dropped once it is most of a long array, so that neither the
// array nor a copy of it grows without end. An emptied queue is not truncated
// at once: setting an array's length is a call into the engine, which costs
// more per commit than a few thousand stale numbers cost in memory.

/** Drops the consumed front of `a` when worth it; returns the head to use from now on. */
export function compactQueue(a: number[], head: number): number {
  if (head > 3072 && head * 2 > a.length) {
    a.splice(0, head);
    return 0;
  }
  return head;
}
