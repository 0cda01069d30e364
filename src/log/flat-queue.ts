// Queues of numbers kept as one flat array and a head index (records of a few
// numbers each, consumed from the front): no object per record. What the head
// has passed is dropped when the queue empties, or once it is most of a long
// array, so that neither the array nor a copy of it grows without end.

/** Drops the consumed front of `a` when worth it; returns the head to use from now on. */
export function compactQueue(a: number[], head: number): number {
  if (head === a.length) {
    a.length = 0;
    return 0;
  }
  if (head > 3072 && head * 2 > a.length) {
    a.splice(0, head);
    return 0;
  }
  return head;
}
