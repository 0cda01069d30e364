// `raftlog inspect` reads a directory a running node may be changing: a segment the node releases
// shrinks under it (the node truncates a released segment a few MiB at a time before removing it).
// The faultfs library truncates the segment to nothing as inspect reads it.
import { join } from 'node:path';
import { afterEach, expect, it, vi } from 'vitest';
import { main as inspect } from '../../src/cli/inspect.js';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { Wal } from '../../src/wal/index.js';
import { runWithFaults } from '../fault/run-with-faults.js';
import { enc, tempDir } from '../log/helpers.js';

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;

const cleanups: Array<() => void> = [];
afterEach(() => {
  vi.restoreAllMocks();
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

it('inspect refuses the directory of a node that has it open (WAL_LOCKED), and inspects it once closed', async () => {
  const t = tempDir('raftlog-inspect-live-');
  cleanups.push(t.cleanup);
  const log = await ReplicatedLog.open({ dataDir: t.dir });
  let closed = false;
  cleanups.push(() => {
    if (!closed) void log.close().catch(() => undefined);
  });
  await log.append(enc('x'));
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  vi.spyOn(console, 'log').mockImplementation(() => undefined);
  expect(await inspect([t.dir])).toBe(1);
  const lines = err.mock.calls.map((c) => String(c[0]));
  expect(lines.join('\n')).toMatch(new RegExp(`WAL_LOCKED: .*open in process ${process.pid}`));
  await log.close();
  closed = true;
  err.mockClear();
  expect(await inspect([t.dir])).toBe(0);
  expect(err.mock.calls).toEqual([]);
});
