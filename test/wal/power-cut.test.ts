// Power cuts against the native WAL. A workload runs under faultfs, which logs
// every write (with its bytes) and every fsync; then, for many seeded cut points,
// the disk a power cut could have left is rebuilt (synced data and directory
// entries, plus any subset of the rest: see test/fault/power-cut.ts) and opened.
// Every append acknowledged before the cut must be there; the open must not
// report corruption. With a disk that lies about fdatasync, it must not hold.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { crashImage } from '../fault/power-cut.js';
import { runWithFaults, type FaultOp, type FaultRule } from '../fault/run-with-faults.js';
import { Wal } from '../../src/wal/index.js';
import { seeded, testSeed } from '../seeded.js';
import { payload } from './helpers.js';

const CHILD = new URL('../fault/power-child.ts', import.meta.url).pathname;
const CUTS = Number(process.env['POWER_CUTS'] ?? 120);
const temps: string[] = [];
afterAll(() => {
  for (const t of temps) rmSync(t, { recursive: true, force: true });
});

async function record(seed: number, rules: FaultRule[] = []): Promise<{ root: string; ops: FaultOp[]; data: Buffer }> {
  const root = mkdtempSync(join(tmpdir(), 'raftlog-power-'));
  const logs = mkdtempSync(join(tmpdir(), 'raftlog-power-log-'));
  temps.push(root, logs);
  const r = await runWithFaults(CHILD, [root, String(seed)], { root, rules, log: join(logs, 'ops'), data: join(logs, 'data') });
  expect(r.code, r.stderr).toBe(0);
  return { root, ops: r.ops, data: readFileSync(join(logs, 'data')) };
}

/** The highest index acknowledged by the workload before op `cut`. */
function ackedBefore(ops: readonly FaultOp[], data: Buffer, root: string, cut: number): number {
  let acked = 0;
  for (const op of ops.slice(0, cut)) {
    if (op.path !== join(root, 'acks') || op.doff < 0) continue;
    acked = Math.max(
      acked,
      Number(
        data
          .subarray(op.doff, op.doff + op.ret)
          .toString()
          .trim(),
      ),
    );
  }
  return acked;
}

/** Opens the image; returns why an acknowledged append is not there, or null. */
async function check(image: string, acked: number): Promise<string | null> {
  let wal: Wal;
  try {
    wal = await Wal.open(join(image, 'wal'), { segmentBytes: 32 * 1024 });
  } catch (err) {
    return `open failed: ${(err as Error).message}`;
  }
  try {
    if (wal.lastIndex < acked) return `acknowledged up to ${acked}, the log ends at ${wal.lastIndex}`;
    // A cut leaves a prefix of what was written: never records that contradict one another.
    if (wal.conflict !== null) return `replay met a conflict: ${wal.conflict.why}`;
    const es = acked >= wal.firstIndex ? wal.entriesSync(wal.firstIndex, acked + 1) : [];
    for (const e of es) {
      // The workload's payloads are payload(index, 1, 0, length): the bytes follow from the index.
      if (e.term !== 1 || !Buffer.from(e.data).equals(Buffer.from(payload(e.index, 1, 0, e.data.length)))) return `entry ${e.index} differs`;
    }
    return null;
  } finally {
    await wal.close();
  }
}

async function cuts(seed: number, rules: FaultRule[]): Promise<{ failures: string[]; ackedCuts: number }> {
  const { root, ops, data } = await record(seed, rules);
  const random = seeded(seed);
  const failures: string[] = [];
  let ackedCuts = 0;
  // Half the cuts fall just before a segment's fdatasync: the window in which a group is written and not yet durable.
  const syncs = ops.flatMap((op, i) => (op.op === 'fdatasync' && op.path.endsWith('.wal') ? [i] : []));
  for (let k = 0; k < CUTS; k++) {
    const cut = k % 2 === 0 && syncs.length > 0 ? syncs[Math.floor(random() * syncs.length)]! : 1 + Math.floor(random() * ops.length);
    const image = mkdtempSync(join(tmpdir(), 'raftlog-power-image-'));
    try {
      crashImage(ops, data, cut, root, image, random);
      const acked = ackedBefore(ops, data, root, cut);
      if (acked > 0) ackedCuts++;
      const why = await check(image, acked);
      if (why !== null) failures.push(`cut at op ${cut} of ${ops.length}: ${why}`);
    } finally {
      rmSync(image, { recursive: true, force: true });
    }
    await new Promise<void>((r) => setImmediate(r));
  }
  return { failures, ackedCuts };
}

describe('power cuts', () => {
  it('every acknowledged append survives any cut, with pages and directory changes persisted in any allowed order', async () => {
    const seed = testSeed('power cuts');
    const { failures, ackedCuts } = await cuts(seed, []);
    expect(failures).toEqual([]);
    expect(ackedCuts).toBeGreaterThan(CUTS / 2); // most cuts fall after acknowledged work, or this proves little
  }, 240_000);

  it('a disk that only pretends to fdatasync loses acknowledged appends, and the test sees it', async () => {
    const seed = testSeed('power cuts, lying disk');
    const { failures } = await cuts(seed, [{ op: 'fdatasync', glob: '*.wal', times: 0, errno: 'LIE' }]);
    expect(failures.length).toBeGreaterThan(0);
  }, 240_000);
});
