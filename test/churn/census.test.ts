// The census tells what is held from what is winding down: a short deadline set by each cycle
// (a refused connection's grace to read its refusal) is not growth, however fast the cycles run,
// while a timer each cycle leaves behind is.
import { afterEach, describe, expect, it } from 'vitest';
import { Census } from './census.js';

const census = new Census();
const timers: NodeJS.Timeout[] = [];
afterEach(() => {
  census.stop();
  for (const t of timers.splice(0)) clearTimeout(t);
});

describe('census', () => {
  it('a one-shot timer of a second set by each cycle is waited for, not counted as growth', async () => {
    census.start();
    // Cycles faster than the timers they set: the last census is taken with all of theirs pending.
    const cycle = async (): Promise<void> => void timers.push(setTimeout(() => undefined, 1_000).unref());
    expect(await census.growth({ cycles: 10, warmUp: 2, cycle })).toEqual({});
  });

  it('a timer that has fired or been cleared, or an immediate cleared, is not counted, though Node reports it destroyed only later', async () => {
    census.start();
    const ended: object[] = [];
    // Timers of one list fire in one turn; this continues in that turn, before Node's report.
    await new Promise((r) => {
      for (let k = 0; k < 5; k++) ended.push(setTimeout(() => undefined, 1));
      const cleared = setTimeout(() => undefined, 1_000);
      clearTimeout(cleared);
      ended.push(cleared);
      setTimeout(r, 1);
    });
    for (let k = 0; k < 5; k++) {
      const immediate = setImmediate(() => undefined);
      clearImmediate(immediate);
      ended.push(immediate);
    }
    expect(ended.filter((t) => census.counts(t))).toEqual([]);
    // What is still pending is counted.
    const pending = setTimeout(() => undefined, 10_000).unref();
    timers.push(pending);
    expect(census.counts(pending)).toBe(true);
  });

  it('a timer each cycle leaves behind is growth: an interval, or a one-shot timer longer than a second', async () => {
    census.start();
    const cycle = async (i: number): Promise<void> =>
      void timers.push(i % 2 === 0 ? setInterval(() => undefined, 100).unref() : setTimeout(() => undefined, 5_000).unref());
    expect(await census.growth({ cycles: 10, warmUp: 2, cycle })).toEqual({ Timeout: [expect.any(Number), expect.any(Number)] });
  });
});
