import { describe, expect, it } from 'vitest';
import { compactQueue } from '../../src/log/flat-queue.js';

describe('compactQueue', () => {
  it('keeps a short consumed front, even all of a short queue, and drops a long one', () => {
    const done = [1, 2, 3];
    expect(compactQueue(done, 3)).toBe(3);
    expect(done).toEqual([1, 2, 3]);

    const consumed = Array.from({ length: 4000 }, (_, i) => i);
    expect(compactQueue(consumed, 4000)).toBe(0);
    expect(consumed).toEqual([]);

    const short = [1, 2, 3, 4, 5, 6];
    expect(compactQueue(short, 3)).toBe(3);
    expect(short).toEqual([1, 2, 3, 4, 5, 6]);

    const long = Array.from({ length: 6000 }, (_, i) => i);
    expect(compactQueue(long, 4002)).toBe(0);
    expect(long.length).toBe(1998);
    expect(long[0]).toBe(4002);

    // Most of the array not yet consumed: left alone, however long the front.
    const young = Array.from({ length: 9000 }, (_, i) => i);
    expect(compactQueue(young, 4002)).toBe(4002);
    expect(young.length).toBe(9000);
  });
});
