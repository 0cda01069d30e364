// The snapshot store under injected disk faults (ENOSPC, EIO) in a child process:
// every step that fails rejects, leaves no temporary file and no open descriptor
// behind, closes the stream it was writing, and the snapshot held before is untouched.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FileSnapshotStore } from '../../src/storage/snapshot-store.js';
import { runWithFaults, type FaultRule } from '../fault/run-with-faults.js';

const temps: string[] = [];
afterEach(() => {
  for (const d of temps.splice(0)) rmSync(d, { recursive: true, force: true });
});

interface Result {
  error: { code?: string; message: string } | null;
  left: string[];
  fds: string[];
  returned: boolean;
  held: Array<{ index: number; term: number; received?: boolean }>;
  afterReopen: string[];
  loaded: boolean;
}

async function run(step: string, rules: (dir: string) => FaultRule[]): Promise<Result> {
  const base = mkdtempSync(join(tmpdir(), 'raftlog-snapfault-'));
  temps.push(base);
  const dir = join(base, 'snapshots');
  const before = await FileSnapshotStore.open(dir);
  await before.save({ meta: { index: 4, term: 1, conf: { voters: [1, 2, 3], learners: [] } }, data: Buffer.from('the state at 4') });
  const r = await runWithFaults(join('test', 'storage', 'snapshot-fault-child.ts'), [dir, step], {
    root: dir,
    rules: rules(dir),
    log: join(base, 'ops.log'),
  });
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Result;
}

const HELD = 'snap-0000000000000004-1.snap';

describe('snapshot store under disk faults', () => {
  const cases: Array<[string, string, (dir: string) => FaultRule[], string]> = [
    ['a small save with no space to write', 'save', (d) => [{ op: 'write', glob: `${d}/*.tmp`, errno: 'ENOSPC' }], 'ENOSPC'],
    ['a streamed save with no space after 1 MiB', 'stream', (d) => [{ op: 'write', glob: `${d}/*.tmp`, after: 1, errno: 'ENOSPC' }], 'ENOSPC'],
    ['a save whose fsync fails', 'stream', (d) => [{ op: 'fsync', glob: `${d}/*.tmp`, errno: 'EIO' }], 'EIO'],
    ['a save whose rename fails', 'save', (d) => [{ op: 'rename', glob: `${d}/*.tmp`, errno: 'EIO' }], 'EIO'],
    ['a streamed save whose temporary file cannot be made', 'stream', (d) => [{ op: 'open', glob: `${d}/*.tmp`, errno: 'ENOSPC' }], 'ENOSPC'],
    ['a received snapshot with no space to spool', 'receive', (d) => [{ op: 'write', glob: `${d}/spool-*`, after: 1, errno: 'ENOSPC' }], 'ENOSPC'],
    ['a received snapshot whose fsync fails', 'receive', (d) => [{ op: 'fsync', glob: `${d}/spool-*`, errno: 'EIO' }], 'EIO'],
    ['a received snapshot whose rename into place fails', 'receive', (d) => [{ op: 'rename', glob: `${d}/spool-*`, errno: 'EIO' }], 'EIO'],
  ];
  for (const [what, step, rules, code] of cases) {
    it(`${what}: rejects, leaves nothing behind, and the held snapshot loads after a reopen`, async () => {
      const r = await run(step, rules);
      expect(r.error?.code, what).toBe(code);
      expect(r.left, what).toEqual([HELD]);
      expect(r.fds, what).toEqual([]);
      if (step !== 'receive') expect(r.returned, what).toBe(true);
      expect(r.held, what).toEqual([{ index: 4, term: 1 }]);
      expect(r.afterReopen, what).toEqual([HELD]);
      expect(r.loaded, what).toBe(true);
    });
  }
});
