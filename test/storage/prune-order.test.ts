// A prune stopped partway (a crash) must never leave a received snapshot's file without the mark
// that says the WAL may not record it: at the next open such a file past the log's end reads as
// a WAL that lost its end, and the node refuses to open (STATE_CORRUPT).
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it, vi } from 'vitest';

/** The unlink calls the store makes fail from the first of a snapshot file on, as a crash there would stop it. */
let crashAtSnapshotFile = false;
vi.mock('node:fs/promises', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...fs,
    // The order a directory lists its names in is the file system's: here the marks come first.
    readdir: (async (...args: Parameters<typeof fs.readdir>) => {
      const names = (await fs.readdir(...args)) as unknown[];
      if (names.every((n) => typeof n === 'string')) (names as string[]).sort((a, b) => Number(b.endsWith('.recv')) - Number(a.endsWith('.recv')));
      return names;
    }) as typeof fs.readdir,
    unlink: async (path: Parameters<typeof fs.unlink>[0]) => {
      if (crashAtSnapshotFile && String(path).endsWith('.snap')) throw Object.assign(new Error('killed'), { code: 'EKILLED' });
      return fs.unlink(path);
    },
  };
});

const { FileSnapshotStore } = await import('../../src/storage/snapshot-store.js');
const { checkStoredState } = await import('../../src/storage/raft-storage.js');

const temps: string[] = [];
afterEach(() => {
  crashAtSnapshotFile = false;
  for (const t of temps.splice(0)) rmSync(t, { recursive: true, force: true });
});

it('a prune stopped before it removes a received snapshot leaves that snapshot marked as received', async () => {
  const base = mkdtempSync(join(tmpdir(), 'raftlog-prune-'));
  temps.push(base);
  const conf = { voters: [1, 2], learners: [] };
  const sender = await FileSnapshotStore.open(join(base, 'sender'));
  const store = await FileSnapshotStore.open(join(base, 'receiver'));
  // Received and installed, its WAL marker never written (a crash): then a snapshot of the
  // node's own, below it, is recorded and prunes the rest.
  const meta = { index: 12, term: 4, conf };
  await sender.save({ meta, data: Buffer.from('the state at 12') });
  const out = await sender.open({ meta, data: new Uint8Array(0) });
  const spool = await store.spool(meta, out.size);
  for await (const c of out.chunks) await spool.write(c);
  await store.install({ meta, data: await spool.finish() });
  await store.save({ meta: { index: 9, term: 4, conf }, data: Buffer.from('the state at 9') });
  crashAtSnapshotFile = true;
  await expect(store.prune(9)).rejects.toMatchObject({ code: 'EKILLED' });
  crashAtSnapshotFile = false;
  const left = readdirSync(join(base, 'receiver'));
  expect(left).toContain('snap-0000000000000012-4.snap');
  const held = await (await FileSnapshotStore.open(join(base, 'receiver'))).held();
  expect(held).toEqual([
    { index: 9, term: 4 },
    { index: 12, term: 4, received: true },
  ]);
  // The WAL of that node: its marker at 9, no entry past it.
  const wal = { hardState: { term: 4, vote: 0, commit: 9 }, snapshot: { index: 9, term: 4 }, firstIndex: 10, lastIndex: 9, term: () => 4, conflict: null };
  expect(() => checkStoredState(wal, held)).not.toThrow();
});
