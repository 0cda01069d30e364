// Data directories written by earlier releases keep opening. Each fixture was
// made by test/fixtures/make-format-<n>.ts with the release that introduced it.
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { RecordingMachine } from '../log/helpers.js';

const temps: string[] = [];
afterEach(() => {
  for (const t of temps.splice(0)) rmSync(t, { recursive: true, force: true });
});

it('a data directory of format 2 (release 0.2.0) opens with every record, and takes new ones', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'raftlog-upgrade-'));
  temps.push(dir);
  cpSync(new URL('../fixtures/format-2', import.meta.url).pathname, dir, { recursive: true });
  const sm = new RecordingMachine();
  const log = await ReplicatedLog.open({ dataDir: dir, stateMachine: sm, snapshotEvery: 20, segmentBytes: 4096 });
  await log.barrier();
  expect(sm.restoredFrom).not.toBeNull(); // the snapshot file was read, then the rest of the WAL replayed
  expect(sm.applied.map((a) => a.data)).toEqual(Array.from({ length: 50 }, (_, i) => `record ${i}`));
  await log.append(Buffer.from('after the upgrade'));
  await log.close();
});
