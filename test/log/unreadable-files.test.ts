// A file of the data directory that this process may not read (its mode, its owner) is refused
// at open with a code that names it, and what the open took is released. The tests run as
// root, which reads any file whatever its mode: the refusal of open(2) is made here.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { readSnapshotFile } from '../../src/storage/snapshot-store.js';
import { RecordingMachine, enc, fdsUnder, tempDir, waitFor } from './helpers.js';

/** Paths whose open(2) fails with EACCES, as for a file of mode 000 not run as root. */
const denied = new Set<string>();

vi.mock('node:fs/promises', async (original) => {
  const fs = await original<typeof import('node:fs/promises')>();
  const open: typeof fs.open = async (path, ...rest) => {
    if (denied.has(String(path)))
      throw Object.assign(new Error(`EACCES: permission denied, open '${String(path)}'`), { code: 'EACCES', errno: -13, syscall: 'open', path: String(path) });
    return fs.open(path, ...rest);
  };
  return { ...fs, default: { ...fs, open }, open };
});

const OPTIONS = { id: 1, snapshotEvery: 10, snapshotCatchUpEntries: 0 };
let made: { dir: string; cleanup(): void };

beforeAll(async () => {
  made = tempDir('raftlog-unreadable-');
  const log = await ReplicatedLog.open({ ...OPTIONS, dataDir: made.dir, stateMachine: new RecordingMachine() });
  for (let i = 0; i < 15; i++) await log.append(enc(`r${i}`));
  await waitFor('a snapshot', () => log.status().snapshotIndex >= 10);
  await log.close();
});
afterAll(() => made.cleanup());

const refusal = async (): Promise<{ code?: string; message: string }> =>
  ReplicatedLog.open({ ...OPTIONS, dataDir: made.dir, stateMachine: new RecordingMachine() }).then(
    async (log) => {
      await log.close();
      throw new Error('opened');
    },
    (err: unknown) => err as { code?: string; message: string },
  );

describe('a snapshot file this process may not read', () => {
  it('is SNAPSHOT_DIR_UNUSABLE naming it, not a failure outside raftlog codes, and the open releases the directory', async () => {
    const name = readdirSync(join(made.dir, 'snapshots')).find((n) => n.endsWith('.snap'))!;
    denied.add(join(made.dir, 'snapshots', name));
    try {
      for (let attempt = 0; attempt < 2; attempt++) {
        const err = await refusal();
        expect({ code: err.code, message: err.message }).toEqual({
          code: 'SNAPSHOT_DIR_UNUSABLE',
          message: `snapshot directory ${join(made.dir, 'snapshots')} holds ${name}, which this process cannot read (EACCES)`,
        });
        expect(fdsUnder(made.dir)).toEqual([]);
      }
    } finally {
      denied.clear();
    }
    const log = await ReplicatedLog.open({ ...OPTIONS, dataDir: made.dir, stateMachine: new RecordingMachine() });
    expect(log.status().snapshotIndex).toBeGreaterThanOrEqual(10);
    await log.close();
  });

  it('named as a backup (a file the operator gave), keeps the system code for the caller to report', async () => {
    const file = join(
      made.dir,
      'snapshots',
      readdirSync(join(made.dir, 'snapshots')).find((n) => n.endsWith('.snap'))!,
    );
    denied.add(file);
    try {
      await expect(readSnapshotFile(file, false, { followLinks: true })).rejects.toMatchObject({ code: 'EACCES' });
    } finally {
      denied.clear();
    }
  });
});
