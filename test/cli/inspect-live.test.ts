// `raftlog inspect` reads a directory a running node may be changing: a segment the node releases
// shrinks under it (the node truncates a released segment a few MiB at a time before removing it).
// The faultfs library truncates the segment to nothing as inspect reads it.
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { Wal } from '../../src/wal/index.js';
import { runWithFaults } from '../fault/run-with-faults.js';
import { tempDir } from '../log/helpers.js';

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

it('inspect of a segment that shrinks as it is read reports it with WAL_IO, where it died of SIGBUS', async () => {
  const t = tempDir('raftlog-inspect-live-');
  cleanups.push(t.cleanup);
  const walDir = join(t.dir, 'wal');
  const wal = await Wal.open(walDir);
  await wal.append([{ index: 1, term: 1, type: 0, data: Buffer.from('a record') }]);
  await wal.close();
  const run = await runWithFaults(MAIN, ['inspect', walDir], {
    root: walDir,
    rules: [{ op: 'read', glob: '*.wal', errno: 'SHRINK' }],
    log: join(t.dir, 'faults.log'),
  });
  expect(run.signal, run.stderr).toBe(null);
  expect(run.code, run.stdout + run.stderr).toBe(1);
  expect(run.stdout + run.stderr).toMatch(/WAL_IO.*shrank/s);
});
