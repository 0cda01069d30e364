// A small write submitted while the writer thread is idle runs on the appending
// thread. It must be exactly as durable, and resolve in the same order, as one
// the writer thread runs; the two kinds interleave whenever a rotation or a
// large write keeps the writer thread busy.
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { addon } from '../../src/wal/addon.js';
import { Wal, type WalEntry } from '../../src/wal/index.js';
import { runWithFaults } from '../fault/run-with-faults.js';
import { seeded, testSeed } from '../seeded.js';
import { cleanTempDirs, range, tempDir } from './helpers.js';

afterEach(cleanTempDirs);

// No fdatasync, so no slow disk can push the average over the inline limit, and no
// zeroing ahead, which keeps the writer thread busy while idle: whether a job runs
// inline then depends only on the writer thread's queue and the job's size.
const ONLY_BY_QUEUE = { sync: 'none', preallocate: 'none' } as const;
const LARGE = addon().inlineMaxBytes + 4096; // over the most a job may have to run inline

const large = (index: number): WalEntry => ({ index, term: 1, type: 0, data: new Uint8Array(LARGE).fill(index & 0xff) });
const kib8 = (index: number): WalEntry => ({ index, term: 1, type: 0, data: new Uint8Array(8192).fill(index & 0xff) });

describe('WAL: writes run on the appending thread while the writer thread is idle', () => {
  it('runs lone small appends inline once a few in a row found the writer idle, sending one to the thread to look ever more rarely', async () => {
    const wal = await Wal.open(tempDir(), ONLY_BY_QUEUE);
    // The appends (of the given indexes, awaited one by one) that went to the writer thread.
    const threaded = async (from: number, to: number): Promise<number[]> => {
      const out: number[] = [];
      for (let i = from; i <= to; i++) {
        const before = wal.stats().inlineGroups;
        await wal.append(range(i, i + 1));
        if (wal.stats().inlineGroups === before) out.push(i);
      }
      return out;
    };
    // 1-4 go to the thread (the first creates the segment; then 4 jobs in a row must have
    // found the writer idle). Then one goes to look after 15 inline (20); each look the
    // caller waited for doubles the interval: after 31 (52), after 63 (116).
    expect(await threaded(1, 120)).toEqual([1, 2, 3, 4, 20, 52, 116]);

    // A job that finds the writer busy with another starts over: 4 jobs that find it idle
    // go to the thread, and the next look comes after 15 inline again. The other job is
    // 16 MiB: on a loaded machine the woken writer thread may take the core from this one
    // for a few milliseconds, and finish a smaller job first (then the pair is tried again).
    let next = 121;
    let overlapped = false;
    for (let attempt = 0; attempt < 20 && !overlapped; attempt++) {
      const mib = Array.from({ length: 16 }, (_, k) => ({ index: next + k, term: 1, type: 0, data: new Uint8Array(1 << 20).fill(k) }));
      next += mib.length;
      const big = wal.append(mib);
      await Promise.resolve(); // the large job is handed over; the next append is a job of its own
      const before = wal.stats().inlineGroups;
      const small = wal.append(range(next, next + 1));
      next++;
      await Promise.all([big, small]);
      overlapped = wal.stats().inlineGroups === before;
    }
    expect(overlapped).toBe(true);
    expect(await threaded(next, next + 27)).toEqual([0, 1, 2, 3, 19].map((k) => next + k));
    next += 28;

    // Never inline: a write over the limit.
    const inline = wal.stats().inlineGroups;
    await wal.append([large(next)]);
    expect(wal.stats().inlineGroups).toBe(inline);
    await wal.close();
  });

  it('resumes inline at once after a job that found the writer only zeroing ahead', async () => {
    // Each inline job that leaves less than half a step of zeros ahead wakes the writer
    // thread to zero the next MiB, and the job after it may find the thread doing so. That
    // says nothing about the caller: the next job runs inline again, where one that found
    // the writer busy with another job starts a streak of four over.
    const wal = await Wal.open(tempDir(), { preallocate: 'zeros', sync: 'none' });
    const threaded: number[] = [];
    for (let i = 1; i <= 1500; i++) {
      const before = wal.stats().inlineGroups;
      await wal.append([kib8(i)]);
      if (wal.stats().inlineGroups === before) threaded.push(i);
    }
    // Runs of consecutive appends that went to the thread, after the first four.
    const runs: number[][] = [];
    for (const i of threaded.filter((i) => i > 4)) {
      const last = runs.at(-1);
      if (last !== undefined && last.at(-1) === i - 1) last.push(i);
      else runs.push([i]);
    }
    // A look at the thread, or a second piece of zeroing, may fall next to a job queued
    // behind zeroing; starting the streak over would make runs of five or more.
    expect(
      runs.filter((r) => r.length > 3),
      `threaded: ${threaded.join(' ')}`,
    ).toEqual([]);
    await wal.close();
  });

  it('resumes inline after a job that found the writer zeroing ahead and the one submitted right behind it', async () => {
    // A follower may get its next entries before its last write is durable (the leader heard
    // from the other follower). If that write found the writer thread zeroing ahead, the next
    // job finds the thread busy with it, which says no more about the caller than the
    // zeroing did: starting the streak of four over would send the four after it there too.
    // One segment large enough for every append below: a rotation would send a job to the
    // thread too. On a loaded machine the writer thread is often found zeroing only every
    // few thousand appends, so the test goes on until it has seen ten pairs, or 30,000 appends.
    const wal = await Wal.open(tempDir(), { preallocate: 'zeros', sync: 'none', segmentBytes: 256 * 1024 * 1024 });
    let next = 1;
    /** Appends one entry and hands its job over; `inline`: it ran on this thread. */
    const submit = async (): Promise<{ durable: Promise<void>; inline: boolean }> => {
      const before = wal.stats().inlineGroups;
      const durable = wal.append([kib8(next++)]);
      await Promise.resolve(); // the job is handed over, or has run inline
      return { durable, inline: wal.stats().inlineGroups > before };
    };
    // A turn of the event loop before each append: after a millisecond of inline jobs with
    // none, the next is handed over in the next turn, not in the append's own.
    const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
    // Of the four appends after each such pair, how many went to the thread.
    const after: number[] = [];
    let sinceThreaded = 0; // inline jobs since the last that went to the thread
    while (next <= 30_000 && after.length < 10) {
      await turn();
      const job = await submit();
      if (job.inline) {
        await job.durable;
        sinceThreaded++;
        continue;
      }
      // A look at the thread (a probe) goes after 15, 31, 63, 127 or 255 inline jobs; after
      // any other number but none, only zeroing ahead keeps a lone small job from running
      // inline (a rotation would too, but the first comes after 32,000 of these).
      const zeroing = sinceThreaded >= 1 && ![15, 31, 63, 127, 255].includes(sinceThreaded);
      sinceThreaded = 0;
      if (!zeroing) {
        await job.durable;
        continue;
      }
      // The next job comes while that one waits for the zeroing or runs.
      const behind = await submit();
      await Promise.all([job.durable, behind.durable]);
      if (behind.inline) sinceThreaded++;
      let threaded = 0;
      for (let k = 0; k < 4; k++) {
        await turn();
        const j = await submit();
        await j.durable;
        if (j.inline) sinceThreaded++;
        else {
          threaded++;
          sinceThreaded = 0;
        }
      }
      after.push(threaded);
    }
    expect(after.length, `the writer thread was found zeroing ahead after none of ${next - 1} appends`).toBeGreaterThan(0);
    // One more may find the writer zeroing again; four means the streak started over.
    expect(
      after.filter((n) => n > 1),
      `threaded after each pair: ${after.join(' ')}`,
    ).toEqual([]);
    await wal.close();
  });

  it('lets the event loop turn every millisecond or so under a caller that awaits each append in a loop', async () => {
    // Each append is submitted from the microtask that resolved the one before: run
    // inline, none would ever yield to the loop. A timer that reschedules itself fires
    // once per turn (at most once a millisecond).
    const wal = await Wal.open(tempDir());
    let ticks = 0;
    let ticking = true;
    const tick = (): void => {
      ticks++;
      if (ticking) setTimeout(tick, 0);
    };
    setTimeout(tick, 0);
    const end = performance.now() + 300;
    let next = 1;
    const before = wal.stats();
    while (performance.now() < end) await wal.append(range(next, ++next));
    ticking = false;
    const s = wal.stats();
    const inline = s.inlineGroups - before.inlineGroups;
    // Without the bound the loop turns only when a job goes to the writer thread: 15
    // times in 300 ms here; with it, 98-217 under `stress-ng --cpu 3 --io 1`.
    expect(ticks, `${ticks} turns over ${s.groups - before.groups} appends, ${inline} inline`).toBeGreaterThan(40);
    await wal.close();
  });

  it('calls beforeInlineWrite before every write small enough to run inline, before it is durable, and never for a large one', async () => {
    const wal = await Wal.open(tempDir(), ONLY_BY_QUEUE);
    const calls: number[] = [];
    wal.beforeInlineWrite = () => calls.push(wal.stats().groups);
    for (let i = 1; i <= 20; i++) {
      const p = wal.append(range(i, i + 1));
      expect(calls.length, `append ${i}: the hook runs when the job is handed over, not at once`).toBe(i - 1);
      await p;
      // Called once per job, before the job's group was counted done.
      expect(calls).toEqual(Array.from({ length: i }, (_, k) => k));
    }
    await wal.append([large(21)]);
    expect(calls).toHaveLength(20);
    wal.inlineWrites = false;
    await wal.append(range(22, 23));
    expect(calls).toHaveLength(20);
    wal.inlineWrites = true;
    // What the hook appends joins the write it precedes: one job, one group.
    let joined: Promise<void> | undefined;
    wal.beforeInlineWrite = () => {
      wal.beforeInlineWrite = null;
      joined = wal.append(range(24, 25));
    };
    const groups = wal.stats().groups;
    await wal.append(range(23, 24));
    await joined;
    expect(wal.stats().groups - groups).toBe(1);
    expect(wal.lastIndex).toBe(24);
    await wal.close();
  });

  it('keeps writes on the writer thread while recent commits, their writes included, took over a millisecond', async () => {
    // Each write 2 ms late, each sync not: the average of the syncs alone would let every
    // append run inline, holding the event loop for the slow write.
    const root = tempDir();
    const r = await runWithFaults(join('test', 'wal', 'inline-child.ts'), [join(root, 'wal'), '40'], {
      root,
      rules: [{ op: 'write', glob: '*.wal', times: 0, errno: 'SLOW' }],
      log: join(root, 'ops.log'),
    });
    expect(r.code, r.stderr).toBe(0);
    const { groups, inlineGroups } = JSON.parse(r.stdout) as { groups: number; inlineGroups: number };
    expect(groups).toBeGreaterThanOrEqual(40);
    expect(inlineGroups).toBe(0);
  });

  it('goes back to grouping on the writer thread when appends keep coming while it syncs', async () => {
    // With fdatasync: without one, the writer is done before the next turn submits, and
    // running inline is then the right choice. (On a disk too slow for inline, every job
    // goes to the thread and only the grouping is checked.)
    const wal = await Wal.open(tempDir(), { preallocate: 'none' });
    let next = 1;
    const burst = async (): Promise<string | null> => {
      // Appends awaited one by one: inline, as a lone caller's should be.
      for (const end = next + 10; next < end; next++) await wal.append(range(next, next + 1));
      const before = wal.stats();
      // Each append its own job (the WAL collects a job until the microtasks run out), none
      // awaited, submitted microseconds apart: inline, each would be a group of its own.
      const calls: Promise<void>[] = [];
      for (const end = next + 400; next < end; next++) {
        calls.push(wal.append(range(next, next + 1)));
        await Promise.resolve();
      }
      await Promise.all(calls);
      const after = wal.stats();
      const inline = after.inlineGroups - before.inlineGroups;
      const groups = after.groups - before.groups;
      // Stuck inline, nearly all 400 would be groups of one (15 of every 16 inline).
      return inline < 200 && groups < 200 ? null : `${inline} inline of ${groups} groups`;
    };
    // A loaded machine that deschedules this thread while the writer syncs makes the
    // appends truly slower than the disk, and inline then rightly resumes (219 of 239
    // seen once under a parallel test run). A burst that does so is measured again: stuck
    // inline, every burst fails.
    const failed: string[] = [];
    for (let attempt = 0; attempt < 4; attempt++) {
      const seen = await burst();
      if (seen === null) break;
      failed.push(seen);
    }
    expect(failed.length, failed.join('; ')).toBeLessThan(4);
    await wal.close();
  });

  it('resolves mixed inline and queued appends in call order, and reopens with every one of them', async () => {
    const rand = seeded(testSeed('inline and queued appends'));
    const dir = tempDir();
    const options = { ...ONLY_BY_QUEUE, segmentBytes: 256 * 1024 };
    const wal = await Wal.open(dir, options);
    const written: WalEntry[] = [];
    const resolved: number[] = [];
    const inFlight: Promise<void>[] = [];
    let next = 1;
    // On a loaded machine the writer thread is idle less often, and fewer appends run
    // inline: go on past 600 until both kinds are many (the bound only stops a runaway).
    const mixed = (): boolean => {
      const s = wal.stats();
      return s.inlineGroups > 50 && s.groups - s.inlineGroups > 20;
    };
    for (let step = 0; step < 600 || (step < 6000 && !mixed()); step++) {
      // Mostly small appends, some large ones (queued, and rotating often): one per
      // turn, so that each is its own job, submitted while earlier ones may be running.
      const es = rand() < 0.1 ? [large(next)] : range(next, next + 1 + Math.floor(rand() * 4), 1, step);
      next += es.length;
      written.push(...es);
      const last = es.at(-1)!.index;
      inFlight.push(wal.append(es).then(() => void resolved.push(last)));
      if (rand() < 0.3) await Promise.all(inFlight.splice(0));
      else await new Promise((r) => setImmediate(r));
    }
    await Promise.all(inFlight);
    const sorted = [...resolved].sort((a, b) => a - b);
    expect(resolved).toEqual(sorted);
    const s = wal.stats();
    expect(s.inlineGroups).toBeGreaterThan(50);
    expect(s.groups - s.inlineGroups).toBeGreaterThan(20);
    await wal.close();

    const again = await Wal.open(dir, options);
    expect(again.lastIndex).toBe(next - 1);
    const read = await again.entries(1, next);
    expect(read.length).toBe(written.length);
    const differ = read.filter((e, k) => {
      const w = written[k]!;
      return e.index !== w.index || e.term !== w.term || e.type !== w.type || Buffer.compare(e.data, w.data) !== 0;
    });
    expect(differ.map((e) => e.index)).toEqual([]);
    await again.close();
  });
});
