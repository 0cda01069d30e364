// What a data directory holds is its owner's alone, whatever the umask: the WAL, the
// snapshots and the small files are 0600 and the directories raftlog makes 0700, even
// under a directory the operator made readable to others.
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { KvStateMachine, encodeCommand } from '../../src/kv/index.js';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { RESTORE, markUnfinished } from '../../src/storage/unfinished.js';
import { tempDir, waitFor } from './helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Every path under `dir` with the permission bits it has for others than its owner. */
function openToOthers(dir: string): string[] {
  return readdirSync(dir, { recursive: true })
    .map((n) => join(dir, String(n)))
    .filter((p) => (statSync(p).mode & 0o077) !== 0)
    .map((p) => `${p} ${(statSync(p).mode & 0o777).toString(8)}`);
}

it("a node's files and directories are its owner's alone under the usual umask, in a data directory made readable to all", async () => {
  const before = process.umask(0o022);
  cleanups.push(() => void process.umask(before));
  const t = tempDir();
  cleanups.push(t.cleanup);
  const data = join(t.dir, 'data');
  mkdirSync(data, { mode: 0o755 });
  const log = await ReplicatedLog.open<unknown>({ dataDir: data, stateMachine: new KvStateMachine() as never, snapshotEvery: 2 });
  cleanups.push(() => log.close());
  for (let i = 0; i < 5; i++) await log.append(encodeCommand(['SET', Buffer.from('k'), Buffer.from(String(i))]) as never);
  await waitFor('a snapshot', () => readdirSync(join(data, 'snapshots')).some((n) => n.endsWith('.snap')), 60_000);
  await log.close();
  await markUnfinished(data, RESTORE);
  const names = readdirSync(data, { recursive: true }).map(String);
  expect(names).toEqual(expect.arrayContaining(['wal', join('wal', 'LOCK'), 'snapshots', 'instance', RESTORE.marker]));
  expect(names.some((n) => n.endsWith('.wal'))).toBe(true);
  expect(openToOthers(data)).toEqual([]);
  // The directory the operator made keeps its mode.
  expect(statSync(data).mode & 0o777).toBe(0o755);
}, 120_000);
