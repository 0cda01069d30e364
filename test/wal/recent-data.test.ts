import { describe, expect, it } from 'vitest';
import { RecentData } from '../../src/wal/recent-data.js';
import { seeded, testSeed } from '../seeded.js';

type Arrays = (Uint8Array | undefined)[];

/** The data objects it references, whatever it would answer. */
const held = (r: RecentData): Uint8Array[] => {
  const x = r as unknown as { current: Arrays; older: Arrays };
  return [...x.current, ...x.older].filter((d): d is Uint8Array => d !== undefined);
};

describe('RecentData', () => {
  it('hands back the newest entries as given, and never anything but an entry it holds', () => {
    const rand = seeded(testSeed('recent data model'));
    const int = (n: number): number => Math.floor(rand() * n);
    const r = new RecentData();
    const live = new Map<number, Uint8Array>();
    let lo = 1;
    let last = 0;
    /** Pushes since the last truncation, clear or drop that reached them, newest last. */
    let run: number[] = [];
    let wrong = 0;
    for (let step = 0; step < 20_000; step++) {
      const op = int(100);
      if (op < 85) {
        const data = new Uint8Array(int(100) === 0 ? 64 * 1024 : int(2000));
        last++;
        r.push(last, data);
        live.set(last, data);
        run.push(last);
      } else if (op < 90 && last >= lo) {
        const k = lo - 1 + int(last - lo + 2);
        r.truncateAfter(k);
        for (let i = k + 1; i <= last; i++) live.delete(i);
        last = k;
        run = [];
      } else if (op < 98 && last >= lo) {
        r.drop(lo);
        live.delete(lo);
        lo++;
        run = run.filter((i) => i >= lo);
      } else if (op < 99) {
        r.clear();
        live.clear();
        lo = last + 1;
        run = [];
      }
      // Whatever it answers is the entry's own data.
      for (let i = lo; i <= last; i++) {
        const got = r.get(i);
        if (got !== undefined && got !== live.get(i)) wrong++;
      }
      // It holds nothing but live entries' data, and at most two arrays of them.
      const objects = held(r);
      const liveData = new Set(live.values());
      if (objects.length > 128 || objects.some((d) => !liveData.has(d))) wrong++;
      // The newest 64 pushed in a row are all held, unless they hold more bytes than it keeps.
      const newest = run.slice(-64);
      const bytes = newest.reduce((s, i) => s + live.get(i)!.length, 0);
      if (bytes <= 512 * 1024 && newest.some((i) => r.get(i) !== live.get(i))) wrong++;
    }
    expect(wrong).toBe(0);
  });
});
