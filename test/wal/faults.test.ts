// The WAL under injected disk faults (an LD_PRELOAD library fails chosen libc
// calls in a child process and logs every mutating call and fsync): every
// failure is a coded error, open and append always settle, close releases
// everything so that the same process reopens, and nothing acknowledged is
// lost. A child that hangs exits with code 3.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runWithFaults, type FaultOp, type FaultRule } from '../fault/run-with-faults.js';
import { cleanTempDirs, directIo, tempDir } from './helpers.js';

afterEach(cleanTempDirs);

interface Outcome {
  ok: boolean;
  code?: string;
  message?: string;
}
interface Result {
  opens: Outcome[];
  acked: number;
  appendError: Outcome | null;
  reopenedLast: number;
  intact: boolean;
  warnings: string[];
  /** Files under the WAL directory still open in the child after each close settled. */
  heldAfterClose?: string[];
}

async function run(rules: (base: string) => FaultRule[], appends = 20, preallocate = 'fallocate', compact = false) {
  const base = tempDir();
  const dir = join(base, 'x', 'wal');
  const log = join(tempDir(), 'ops.log');
  const r = await runWithFaults(join('test', 'wal', 'fault-child.ts'), [dir, String(appends), preallocate, ...(compact ? ['compact'] : [])], {
    root: base,
    rules: rules(base),
    log,
  });
  expect(r.code, r.stderr).toBe(0);
  const lines = r.stdout.trim().split('\n');
  const result = JSON.parse(lines.at(-1)!) as Result;
  // Whatever failed, a close leaves nothing of the directory open.
  expect(result.heldAfterClose ?? []).toEqual([]);
  return { base, dir, ops: r.ops, result };
}

const at = (ops: FaultOp[], pred: (o: FaultOp, k: number) => boolean): number => ops.findIndex(pred);

/** Successful writes of segment data. */
const segmentWrites = (ops: FaultOp[]): FaultOp[] => ops.filter((o) => o.path.endsWith('.wal') && /^(pwrite|pwritev|write)$/.test(o.op) && !o.fault);
const blockAligned = (o: FaultOp): boolean => o.off % 4096 === 0 && o.len % 4096 === 0;

/** Every append acknowledged, none failed, and every one read back intact after the reopen. */
function lostNothing(result: Result, appends: number): void {
  expect(result.appendError).toBeNull();
  expect(result.acked).toBe(appends);
  expect(result.intact).toBe(true);
}

describe('WAL under disk faults', () => {
  it('makes a new directory and its parent durable before the first append is acknowledged', async () => {
    const { base, dir, ops, result } = await run(() => []);
    expect(result.opens).toEqual([{ ok: true }]);
    expect(result.acked).toBe(20);
    const parent = join(base, 'x');
    const temp = join(parent, '.wal.creating-');
    const mkParent = at(ops, (o) => o.op === 'mkdir' && o.path === parent);
    const syncBase = at(ops, (o) => o.op === 'fsync' && o.path === base);
    const syncTemp = at(ops, (o) => o.op === 'fsync' && o.path.startsWith(temp));
    const lock = at(ops, (o) => o.op === 'create' && o.path.endsWith('/LOCK'));
    // Segment 1 is made, and its header synced, inside the directory before it gets its name.
    const first = at(ops, (o) => o.op === 'create' && o.path.startsWith(temp) && o.path.endsWith('.wal'));
    const firstSync = at(ops, (o) => o.op === 'fdatasync' && o.path.startsWith(temp) && o.path.endsWith('.wal'));
    const rename = at(ops, (o) => o.op === 'rename' && o.to === dir);
    const syncParent = at(ops, (o) => o.op === 'fsync' && o.path === parent);
    const firstData = at(ops, (o) => o.op === 'fdatasync' && o.path.startsWith(`${dir}/`) && o.path.endsWith('.wal'));
    for (const k of [mkParent, syncBase, lock, first, firstSync, syncTemp, rename, syncParent, firstData]) expect(k).toBeGreaterThanOrEqual(0);
    expect(mkParent).toBeLessThan(syncBase);
    expect(lock).toBeLessThan(syncTemp);
    expect(first).toBeLessThan(firstSync);
    expect(firstSync).toBeLessThan(syncTemp);
    expect(syncTemp).toBeLessThan(rename);
    expect(ops[rename]!.path.startsWith(temp)).toBe(true);
    expect(rename).toBeLessThan(syncParent);
    expect(syncParent).toBeLessThan(firstData);
    // A later segment's own entry is synced before data in it is acknowledged too.
    const segRename = at(ops, (o) => o.op === 'rename' && (o.to ?? '').endsWith('.wal'));
    const segData = at(ops, (o, k) => k > segRename && o.op === 'fdatasync' && o.path === ops[segRename]!.to);
    expect(segRename).toBeGreaterThan(firstData);
    expect(at(ops, (o, k) => k > segRename && o.op === 'fsync' && o.path === dir)).toBeLessThan(segData);
  });

  it('fails open with WAL_IO when fsync of the new directory fails, leaves nothing half made, and opens next time', async () => {
    const { base, result } = await run((b) => [{ op: 'fsync', glob: join(b, 'x', '.wal.creating-*'), errno: 'EIO' }]);
    expect(result.opens).toEqual([{ ok: false, code: 'WAL_IO', message: expect.stringMatching(/fsync directory.*Input\/output error/) }, { ok: true }]);
    expect(result.acked).toBe(20);
    expect(result.intact).toBe(true);
    expect(readdirSync(join(base, 'x'))).toEqual(['wal']);
  });

  it('fails open with WAL_IO when there is no space to create the directory, and opens next time', async () => {
    const { base, result } = await run((b) => [{ op: 'mkdir', glob: join(b, 'x', '.wal.creating-*'), errno: 'ENOSPC' }]);
    expect(result.opens.map((o) => o.code ?? 'ok')).toEqual(['WAL_IO', 'ok']);
    expect(result.opens[0]!.message).toMatch(/No space left/);
    expect(result.acked).toBe(20);
    expect(readdirSync(join(base, 'x'))).toEqual(['wal']);
  });

  it('fails open with WAL_IO when fsync of the parent fails after the rename, and syncs it at the next open', async () => {
    const { base, dir, ops, result } = await run((b) => [{ op: 'fsync', glob: join(b, 'x'), errno: 'EIO' }]);
    expect(result.opens.map((o) => o.code ?? 'ok')).toEqual(['WAL_IO', 'ok']);
    const failed = at(ops, (o) => o.op === 'fsync' && o.path === join(base, 'x') && o.fault);
    const retried = at(ops, (o, k) => k > failed && o.op === 'fsync' && o.path === join(base, 'x') && o.ret === 0);
    const firstData = at(ops, (o) => o.op === 'fdatasync' && o.path.startsWith(`${dir}/`) && o.path.endsWith('.wal'));
    expect(failed).toBeGreaterThanOrEqual(0);
    expect(retried).toBeGreaterThan(failed);
    expect(retried).toBeLessThan(firstData);
    expect(result.acked).toBe(20);
    expect(result.intact).toBe(true);
  });

  // Matching segments in wal/ alone: segment 1's header is written and synced before the directory has its name.
  it.each([
    ['fdatasync EIO', { op: 'fdatasync', glob: '*/wal/*.wal', after: 3, errno: 'EIO' }, /fdatasync.*Input\/output error/],
    ['write ENOSPC', { op: 'write', glob: '*/wal/*.wal', after: 5, errno: 'ENOSPC' }, /write.*No space left/],
  ] as const)('fails the append and every later one on %s during appends, keeping every acknowledged entry', async (_name, rule, message) => {
    const { result } = await run(() => [rule]);
    expect(result.opens).toEqual([{ ok: true }]);
    expect(result.acked).toBe(rule.after);
    expect(result.appendError).toMatchObject({ code: 'WAL_IO', message: expect.stringMatching(message) });
    expect(result.reopenedLast).toBeGreaterThanOrEqual(rule.after);
    expect(result.intact).toBe(true);
  });

  it('fails the append that starts a segment when the directory sync after its rename fails, and close leaves no fd open', async () => {
    // The first sync of wal/ itself is the first rotation's (the open syncs its parent).
    const { dir, ops, result } = await run((b) => [{ op: 'fsync', glob: join(b, 'x', 'wal'), errno: 'EIO' }]);
    expect(ops.filter((o) => o.fault)).toMatchObject([{ op: 'fsync', path: dir }]);
    expect(ops.findIndex((o) => o.fault)).toBeGreaterThan(ops.findIndex((o) => o.op === 'rename' && o.path.endsWith('/next.prealloc')));
    expect(result.opens).toEqual([{ ok: true }]);
    expect(result.acked).toBeGreaterThan(0);
    expect(result.acked).toBeLessThan(20);
    expect(result.appendError).toMatchObject({ code: 'WAL_IO', message: expect.stringMatching(/fsync directory.*Input\/output error/) });
    expect(result.reopenedLast).toBe(result.acked);
    expect(result.intact).toBe(true);
  });

  it.each([
    ['fdatasync EIO', 'fallocate', { op: 'fdatasync', glob: '*/.wal.creating-*/*.wal', errno: 'EIO' }],
    ['fallocate ENOSPC', 'fallocate', { op: 'fallocate', glob: '*/.wal.creating-*/*.wal', errno: 'ENOSPC' }],
    ['zero-fill ENOSPC', 'zeros', { op: 'write', glob: '*/.wal.creating-*/*.wal', errno: 'ENOSPC' }],
  ] as const)(
    'fails open with WAL_IO when preparing segment 1 of a new directory fails (%s), leaves nothing half made, and opens next time',
    async (_name, preallocate, rule) => {
      const { base, result } = await run(() => [rule], 5, preallocate);
      expect(result.opens.map((o) => o.code ?? 'ok')).toEqual(['WAL_IO', 'ok']);
      expect(result.acked).toBe(5);
      expect(result.intact).toBe(true);
      expect(readdirSync(join(base, 'x'))).toEqual(['wal']);
    },
  );

  it.each([
    ['fdatasync EIO', 'fallocate', { op: 'fdatasync', glob: '*/next.prealloc', times: 2, errno: 'EIO' }],
    ['fallocate ENOSPC', 'fallocate', { op: 'fallocate', glob: '*/next.prealloc', times: 2, errno: 'ENOSPC' }],
    ['zero-fill ENOSPC', 'zeros', { op: 'write', glob: '*/next.prealloc', times: 2, errno: 'ENOSPC' }],
  ] as const)(
    'rejects the first append that needs a new segment with WAL_IO when preparing it fails twice (%s), and close frees the lock',
    async (_name, preallocate, rule) => {
      const { result } = await run(() => [rule], 20, preallocate);
      expect(result.opens).toEqual([{ ok: true }]);
      expect(result.acked).toBeGreaterThan(0); // into segment 1, which came with the directory
      expect(result.acked).toBeLessThan(20);
      expect(result.appendError).toMatchObject({ code: 'WAL_IO' });
      expect(result.warnings.length).toBeGreaterThanOrEqual(1); // the first failure was retried once
      expect(result.reopenedLast).toBe(result.acked);
      expect(result.intact).toBe(true);
    },
  );

  it('retries preparing a segment once after a failure that passed, and loses nothing', async () => {
    const { result } = await run(() => [{ op: 'fallocate', glob: '*/next.prealloc', times: 1, errno: 'ENOSPC' }], 20);
    expect(result.appendError).toBeNull();
    expect(result.acked).toBe(20);
    expect(result.warnings.some((w) => /No space left/.test(w))).toBe(true);
  });

  it('prepares a new segment, says so, and loses nothing when a released segment cannot be reused', async () => {
    const { ops, result } = await run(() => [{ op: 'rename', glob: '*/recycled.prealloc', times: 1, errno: 'EIO' }], 120, 'fallocate', true);
    lostNothing(result, 120);
    expect(ops.filter((o) => o.fault && o.op === 'rename')).toHaveLength(1);
    expect(result.warnings.filter((w) => /could not reuse .*recycled\.prealloc.*preparing a new segment instead/.test(w))).toHaveLength(1);
    // Later releases are reused as before.
    expect(ops.filter((o) => !o.fault && o.op === 'rename' && o.path.endsWith('/recycled.prealloc')).length).toBeGreaterThan(0);
    // The file left in its slot still counts: no release is renamed over it, which would
    // free its blocks on the releasing thread.
    const kept = new Set<string>();
    const recycled = /\/recycled(\.\d+)?\.prealloc$/;
    for (const o of ops.filter((x) => x.op === 'rename' && !x.fault)) {
      if (recycled.test(o.to ?? '')) {
        expect(kept.has(o.to!), `${o.path} renamed over ${o.to}`).toBe(false);
        kept.add(o.to!);
      }
      if (recycled.test(o.path)) kept.delete(o.path);
    }
  });

  it('removes a released segment it cannot keep for reuse, says so, and loses nothing', async () => {
    // A rename whose source is a segment is only ever the release keeping it for reuse.
    const { ops, result } = await run(() => [{ op: 'rename', glob: '*.wal', times: 1, errno: 'EIO' }], 120, 'fallocate', true);
    lostNothing(result, 120);
    const failed = ops.filter((o) => o.fault && o.op === 'rename');
    expect(failed).toHaveLength(1);
    // Renamed out of the log, then removed in the background.
    const released = `${failed[0]!.path}.released`;
    expect(ops.some((o) => !o.fault && o.op === 'rename' && o.path === failed[0]!.path && o.to === released)).toBe(true);
    expect(ops.some((o) => !o.fault && o.op === 'unlink' && o.path === released)).toBe(true);
    expect(result.warnings.filter((w) => /could not keep .*\.wal for reuse as .*recycled\.prealloc.*removing it instead/.test(w))).toHaveLength(1);
    // Later releases are kept for reuse as before.
    expect(ops.filter((o) => !o.fault && o.op === 'rename' && o.path.endsWith('.wal') && (o.to ?? '').endsWith('/recycled.prealloc')).length).toBeGreaterThan(
      0,
    );
  });

  it('renames a released segment out of the log and syncs the directory, then empties and removes the file off the write path', async () => {
    // 'none': no segment is kept for reuse, so every released one is removed.
    const { dir, ops, result } = await run(() => [], 120, 'none', true);
    expect(result.acked).toBe(120);
    expect(result.intact).toBe(true);
    const renames = ops.filter((o) => o.op === 'rename' && o.path.endsWith('.wal') && o.to === `${o.path}.released`);
    expect(renames.length).toBeGreaterThan(3);
    for (const r of renames) {
      const k = ops.indexOf(r);
      const released = r.to!;
      const synced = at(ops, (o, j) => j > k && o.op === 'fsync' && o.path === dir);
      const emptied = at(ops, (o, j) => j > k && o.op === 'ftruncate' && o.path === released && o.len === 0);
      const removed = at(ops, (o, j) => j > k && o.op === 'unlink' && o.path === released);
      // Out of the log durably before its blocks are freed, emptied before it is removed.
      expect(synced).toBeGreaterThan(k);
      expect(emptied).toBeGreaterThan(synced);
      expect(removed).toBeGreaterThan(emptied);
    }
    // Nothing released is left once the log is closed.
    expect(readdirSync(dir).filter((f) => f.endsWith('.released'))).toEqual([]);
  });

  it('keeps going, says so, and releases it at the next release when a segment below the snapshot cannot be renamed out of the log', async () => {
    // 'none': no segment is kept for reuse, so a rename whose source is a segment is only the release's.
    const { ops, result } = await run(() => [{ op: 'rename', glob: '*.wal', times: 1, errno: 'EIO' }], 120, 'none', true);
    lostNothing(result, 120);
    const failed = ops.find((o) => o.fault && o.op === 'rename');
    expect(failed).toBeDefined();
    expect(result.warnings.filter((w) => /could not release the segment .*\.wal.*the next release tries again/.test(w))).toHaveLength(1);
    // Renamed out of the log by the next release.
    const k = ops.indexOf(failed!);
    expect(ops.some((o, j) => j > k && !o.fault && o.op === 'rename' && o.path === failed!.path && o.to === `${failed!.path}.released`)).toBe(true);
  });

  it('keeps going, says so, and removes it at the next open when a released segment cannot be removed', async () => {
    const { dir, ops, result } = await run(() => [{ op: 'unlink', glob: '*.wal.released', times: 1, errno: 'EIO' }], 120, 'none', true);
    lostNothing(result, 120);
    const failed = ops.find((o) => o.fault && o.op === 'unlink');
    expect(failed).toBeDefined();
    expect(result.warnings.filter((w) => /could not remove the released segment .*\.wal\.released.*the next open removes it/.test(w))).toHaveLength(1);
    // The reopen in the child removed it.
    expect(ops.some((o, k) => k > ops.indexOf(failed!) && !o.fault && o.op === 'unlink' && o.path === failed!.path)).toBe(true);
    expect(readdirSync(dir).filter((f) => f.endsWith('.released'))).toEqual([]);
  });

  it('writes segments in whole blocks, past the page cache, where the file system allows it', async () => {
    const { ops, result } = await run(() => [], 60, 'zeros', true);
    expect(result.acked).toBe(60);
    expect(result.intact).toBe(true);
    const writes = segmentWrites(ops);
    expect(writes.length).toBeGreaterThan(0);
    // With direct I/O every write is whole blocks (a group's last block padded with zeros);
    // without it, records land where they end.
    expect(writes.every(blockAligned)).toBe(directIo());
  });

  it('writes through the page cache, and loses nothing, where direct I/O is refused', async () => {
    const { ops, result } = await run(() => [{ op: 'direct', glob: '*', times: 0, errno: 'EINVAL' }], 60, 'zeros', true);
    expect(result.appendError).toBeNull();
    expect(result.acked).toBe(60);
    expect(result.intact).toBe(true);
    expect(ops.filter((o) => o.op === 'direct' && o.fault).length).toBeGreaterThan(0);
    expect(ops.filter((o) => o.op === 'direct' && !o.fault)).toHaveLength(0);
    expect(segmentWrites(ops).some((o) => !blockAligned(o))).toBe(true);
    expect(result.warnings).toEqual([]);
  });

  it('goes on through the page cache, says so, and loses nothing when a direct write is refused', async () => {
    const { ops, result } = await run(() => [{ op: 'write', glob: '*/wal/*.wal', times: 1, errno: 'EINVAL' }], 60);
    expect(ops.filter((o) => o.fault && o.op !== 'direct')).toHaveLength(1);
    if (directIo()) {
      expect(result.appendError).toBeNull();
      expect(result.acked).toBe(60);
      expect(result.intact).toBe(true);
      expect(result.warnings.filter((w) => /direct writes to .* failed \(Invalid argument\); writing through the page cache/.test(w))).toHaveLength(1);
      // The segment's later writes are no longer whole blocks.
      const refused = ops.findIndex((o) => o.fault);
      expect(segmentWrites(ops.slice(refused)).some((o) => !blockAligned(o))).toBe(true);
    } else {
      // Written through the page cache all along: the refusal is a failed write.
      expect(result.appendError).toMatchObject({ code: 'WAL_IO' });
    }
  });

  it('writes every later segment through the page cache once direct writes are refused, and says so once', async () => {
    // Every direct write refused, as by a device that wants a larger alignment; writes through the
    // page cache pass. Over a dozen 4 KiB segments, each prepared with zeros.
    const { ops, result } = await run(() => [{ op: 'dwrite', glob: '*', times: 0, errno: 'EINVAL' }], 60, 'zeros', true);
    expect(result.appendError).toBeNull();
    expect(result.acked).toBe(60);
    expect(result.intact).toBe(true);
    if (directIo()) {
      expect(ops.filter((o) => o.fault).length).toBeGreaterThan(0);
      expect(result.warnings.filter((w) => /direct writes to .* failed \(Invalid argument\)/.test(w))).toHaveLength(1);
    } else {
      expect(ops.filter((o) => o.fault)).toHaveLength(0);
      expect(result.warnings).toEqual([]);
    }
  });

  it('retries with backoff, logs, and does not fail when fds run out while preparing the next segment', async () => {
    const { ops, result } = await run(() => [{ op: 'open', glob: '*/next.prealloc', after: 1, times: 3, errno: 'EMFILE' }], 60);
    expect(result.appendError).toBeNull();
    expect(result.acked).toBe(60);
    expect(result.intact).toBe(true);
    expect(ops.filter((o) => o.fault && o.err === 'EMFILE')).toHaveLength(3);
    expect(result.warnings.filter((w) => /Too many open files/.test(w))).toHaveLength(3);
    expect(ops.filter((o) => o.op === 'rename' && (o.to ?? '').endsWith('.wal')).length).toBeGreaterThan(2);
  });
});
