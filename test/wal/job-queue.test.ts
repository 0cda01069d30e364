// The job queue against a scripted writer thread: which writes share a job, the
// order promises settle in, what a failure does to the jobs after it, and what
// the cache is told it may drop. The real writer is covered by wal.test.ts,
// inline.test.ts and faults.test.ts.
import { describe, expect, it } from 'vitest';
import type { NativeHandle } from '../../src/wal/addon.js';
import { JobQueue, type MarkerPlace } from '../../src/wal/job-queue.js';
import { MARKER_RECORD_BYTES as M } from '../../src/wal/record.js';
import { SlabPool } from '../../src/wal/slab-pool.js';

interface Submitted {
  buffers: number;
  chunks: number[][];
}

/** A writer that records what it is handed; jobs, releases, fences and close share one id sequence, like the native one. */
function fakeWriter(inlineIds: Set<number> = new Set()) {
  const submitted: Submitted[] = [];
  /** Each submitted chunk's bytes, copied as the native side reads them at submit. */
  const bytes: Uint8Array[][] = [];
  const released: string[][] = [];
  let fences = 0;
  let nextId = 1;
  let refs = 0;
  let disposed = false;
  const handle = {
    submit(buffers: Uint8Array[], plan: Float64Array, chunks: number): number {
      const rows: number[][] = [];
      for (let k = 0; k < chunks; k++) rows.push(Array.from(plan.subarray(6 * k, 6 * k + 6)));
      submitted.push({ buffers: buffers.length, chunks: rows });
      bytes.push(rows.map(([b, begin, end]) => buffers[b!]!.slice(begin, end)));
      const id = nextId++;
      return inlineIds.has(id) ? -id : id;
    },
    release(names: string[]): number {
      released.push(names);
      return nextId++;
    },
    fence: (): number => {
      fences++;
      return nextId++;
    },
    close: (): number => nextId++,
    dispose: (): void => void (disposed = true),
    ref: (): void => void refs++,
    unref: (): void => void refs--,
  } as unknown as NativeHandle;
  return { handle, submitted, bytes, released, fences: () => fences, refs: () => refs, disposed: () => disposed };
}

function queue(inlineIds?: Set<number>) {
  const w = fakeWriter(inlineIds);
  const lowest: number[] = [];
  let offset = 0; // where the next write or marker goes in the segment
  const jobs = new JobQueue(
    w.handle,
    '/wal',
    {
      placeMarker: (): MarkerPlace => {
        const at = { seq: 1, offset, firstIndex: 1 };
        offset += M;
        return at;
      },
      durable: (l) => void lowest.push(l),
    },
    new SlabPool(() => 0),
  );
  /** A write of `n` bytes after the last, as the WAL makes one. */
  const write = (n: number, lowestIndex: number): Promise<void> => {
    const at = jobs.allocate(n, offset);
    jobs.u8[at] = 1;
    jobs.chunk(at, at + n, 1, offset, 1);
    offset += n;
    return jobs.write(lowestIndex);
  };
  return { jobs, w, lowest, write };
}

/** Settled state of each promise, after pending callbacks have run. */
async function states(ps: Promise<void>[]): Promise<string[]> {
  const out = ps.map(() => 'pending');
  ps.forEach((p, k) =>
    p.then(
      () => (out[k] = 'resolved'),
      (e: Error) => (out[k] = `rejected: ${e.message}`),
    ),
  );
  await new Promise((r) => setImmediate(r));
  return out;
}

describe('JobQueue', () => {
  it('hands a turn over in jobs of about a megabyte as it packs them, so the writer starts on the first while the rest is packed', async () => {
    const { jobs, w, write } = queue();
    const KIB = 1024;
    const ps: Promise<void>[] = [];
    let offset = 0;
    const add = (n: number): void => {
      ps.push(write(n, 1));
      offset += n;
    };
    for (let k = 0; k < 3; k++) add(400 * KIB);
    // 1,200 KiB reached: three writes and their marker, at once. A write above a quarter of a
    // slab has a slab of its own; the marker comes from the shared one.
    expect(w.submitted.map((j) => j.buffers)).toEqual([4]);
    for (let k = 0; k < 2; k++) add(400 * KIB);
    add(100);
    expect(w.submitted).toHaveLength(1); // 800 KiB: collected until the turn ends
    await Promise.resolve();
    expect(w.submitted.map((j) => j.buffers)).toEqual([4, 3]); // the 100 B write and the marker share a slab
    jobs.onReport(2);
    expect(await states(ps)).toEqual(ps.map(() => 'resolved'));
  });

  it('joins the writes of one turn into one job that ends with a marker, and settles them in order as reports come', async () => {
    const { jobs, w, lowest, write } = queue();
    const a = [write(40, 1), write(24, 3)];
    expect(w.submitted).toEqual([]); // nothing is submitted before the turn's microtasks run out
    await Promise.resolve();
    const b = [write(8, 5)];
    await Promise.resolve();
    // Small writes are packed one after another into a shared slab, listed once per job.
    expect(w.submitted).toEqual([
      {
        buffers: 1,
        chunks: [
          [0, 0, 40, 1, 0, 1],
          [0, 40, 64, 1, 40, 1],
          [0, 64, 64 + M, 1, 64, 1],
        ],
      },
      {
        buffers: 1,
        chunks: [
          [0, 64 + M, 72 + M, 1, 64 + M, 1],
          [0, 72 + M, 72 + 2 * M, 1, 72 + M, 1],
        ],
      },
    ]);
    expect(w.refs()).toBe(1);
    jobs.onReport(1);
    expect(await states([...a, ...b])).toEqual(['resolved', 'resolved', 'pending']);
    expect(lowest).toEqual([5]); // entry 5 is not durable yet: the cache must keep it
    jobs.onReport(2);
    expect(await states(b)).toEqual(['resolved']);
    expect(lowest).toEqual([5, Infinity]);
    expect(w.refs()).toBe(0); // nothing pending: the process may exit
  });

  it("points every chunk at its own write's bytes and the job's marker, small writes and large ones mixed", async () => {
    const { jobs, w, write } = queue();
    const sizes = [40, 300 * 1024, 24, 8];
    const ps = sizes.map((n, k) => {
      const at = jobs.allocate(n, 1000 * k);
      jobs.u8.fill(k + 1, at, at + n);
      jobs.chunk(at, at + n, 1, 1000 * k, 1);
      return jobs.write(k + 1);
    });
    await Promise.resolve();
    const [chunks] = w.bytes;
    expect(chunks!.map((c) => c.length)).toEqual([...sizes, M]);
    sizes.forEach((n, k) => expect(chunks![k]!.every((x) => x === k + 1)).toBe(true));
    const marker = chunks![sizes.length]!;
    expect(Buffer.from(marker).readUInt32LE(4)).toBe(M - 16); // a marker record's header, written into the slab
    expect(marker[8]).toBe(5);
    jobs.onReport(1);
    expect(new Set(await states(ps))).toEqual(new Set(['resolved']));
  });

  it('a turn of many writes is one job with every chunk in order', async () => {
    const { jobs, w, write } = queue();
    const ps = Array.from({ length: 40 }, (_, k) => write(8, k + 1));
    await Promise.resolve();
    const job = w.submitted[0]!;
    expect(job.buffers).toBe(1);
    expect(job.chunks).toEqual([...Array.from({ length: 40 }, (_, k) => [0, 8 * k, 8 * k + 8, 1, 8 * k, 1]), [0, 320, 320 + M, 1, 320, 1]]);
    jobs.onReport(1);
    expect(new Set(await states(ps))).toEqual(new Set(['resolved']));
  });

  it('settles a write whose job waits for the next turn while a report drops over a thousand settled jobs from the queue', async () => {
    const { jobs, write } = queue(new Set([1]));
    await write(8, 1).then(
      () => undefined,
      () => undefined,
    ); // job 1 runs inline: the loop has not turned since
    const released = Array.from({ length: 1100 }, () => jobs.release([])); // jobs 2..1101, settled by one report
    const start = performance.now();
    while (performance.now() - start < 2); // inline work for over a millisecond: the next job waits for the loop to turn
    const late = write(8, 2);
    jobs.onReport(1101);
    await new Promise((r) => setImmediate(r)); // the late write's job is submitted as 1102
    jobs.onReport(1102);
    expect(await states([late])).toEqual(['resolved']);
    expect(new Set(await states(released))).toEqual(new Set(['resolved']));
  });

  it('a job the writer ran at once (a negative id) is durable when submit returns', async () => {
    const { jobs, w, write } = queue(new Set([2]));
    const first = write(8, 1);
    await Promise.resolve();
    const second = write(8, 2);
    await Promise.resolve();
    // Job 2 ran inline but job 1 is still queued: reports are cumulative, so 2 settles both.
    expect(await states([first, second])).toEqual(['resolved', 'resolved']);
    expect(w.submitted.length).toBe(2);
  });

  it('a failed job fails every job after it, and close still ends cleanly without sealing', async () => {
    const { jobs, w, write } = queue();
    const ok = write(8, 1);
    await Promise.resolve();
    const failed = write(8, 2);
    await Promise.resolve();
    const later = write(8, 3);
    await Promise.resolve();
    jobs.onReport(1);
    jobs.onReport(2, 'EIO: fdatasync');
    const after = write(8, 4); // made after the failure was known: fails with it
    await Promise.resolve();
    jobs.onReport(4);
    expect(await states([ok, failed, later, after])).toEqual([
      'resolved',
      'rejected: WAL /wal failed and must be reopened: EIO: fdatasync',
      'rejected: WAL /wal failed and must be reopened: EIO: fdatasync',
      'rejected: WAL /wal failed and must be reopened: EIO: fdatasync',
    ]);
    const closed = jobs.close(true);
    await new Promise((r) => setImmediate(r));
    jobs.onReport(5); // the fence before the seal
    await new Promise((r) => setImmediate(r));
    jobs.onReport(6); // the close job
    await closed;
    expect(w.submitted.length).toBe(4); // no sealing marker after a failure
    expect(w.disposed()).toBe(true);
  });

  it('close waits for the writes, then seals with a job of only a marker', async () => {
    const { jobs, w, write } = queue();
    const pending = write(8, 1);
    const closed = jobs.close(true);
    expect(w.submitted.length).toBe(1); // close submits the turn's job at once
    expect(w.fences()).toBe(1); // and a fence behind it, which checks the lock once it is durable
    jobs.onReport(2);
    await pending;
    await new Promise((r) => setImmediate(r));
    expect(w.submitted.at(-1)).toEqual({ buffers: 1, chunks: [[0, 8 + M, 8 + 2 * M, 1, 8 + M, 1]] });
    jobs.onReport(3); // the seal
    await new Promise((r) => setImmediate(r));
    expect(w.disposed()).toBe(false);
    jobs.onReport(4); // the close job
    await closed;
    expect(w.disposed()).toBe(true);
  });

  it('close rejects with WAL_IO when the seal fails, after releasing everything', async () => {
    const { jobs, w, write } = queue();
    const pending = write(8, 1);
    const closed = jobs.close(true);
    closed.catch(() => undefined); // judged below, once the reports have come
    jobs.onReport(2); // the write and the fence before the seal
    await pending;
    await new Promise((r) => setImmediate(r));
    jobs.onReport(3, 'EIO: fdatasync'); // the seal
    await new Promise((r) => setImmediate(r));
    jobs.onReport(4, 'EIO: fdatasync'); // the close job, reported with the failure
    await expect(closed).rejects.toMatchObject({ code: 'WAL_IO', message: expect.stringContaining('WAL /wal could not be sealed at close') });
    expect(w.disposed()).toBe(true);
  });

  it('close seals nothing when the fence finds LOCK naming another file, and rejects with that failure', async () => {
    const { jobs, w } = queue();
    const closed = jobs.close(true);
    closed.catch(() => undefined); // judged below, once the reports have come
    expect(w.fences()).toBe(1);
    jobs.onReport(1, '/wal/LOCK no longer names the file this instance locked'); // the fence
    await new Promise((r) => setImmediate(r));
    expect(w.submitted.length).toBe(0); // no seal
    jobs.onReport(2, '/wal/LOCK no longer names the file this instance locked'); // the close job
    await expect(closed).rejects.toMatchObject({ code: 'WAL_IO', message: expect.stringContaining('LOCK no longer names') });
    expect(w.disposed()).toBe(true);
  });

  it('a submit that throws fails the job and every pending one, and the queue stays failed', async () => {
    const { jobs, w, write } = queue();
    const before = write(8, 1);
    await Promise.resolve();
    (w.handle as { submit: unknown }).submit = (): number => {
      throw new Error('ENOMEM');
    };
    const thrown = write(8, 2);
    await Promise.resolve();
    expect(await states([before, thrown])).toEqual([
      'rejected: WAL /wal failed to queue a write; reopen it: ENOMEM',
      'rejected: WAL /wal failed to queue a write; reopen it: ENOMEM',
    ]);
    expect(jobs.failure?.message).toMatch(/failed to queue a write/);
    expect(w.refs()).toBe(0);
  });
});
