// Data directories written by earlier releases keep opening. Each fixture was
// made by test/fixtures/make-format-<n>.ts with the release that introduced it.
import { cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { Wal } from '../../src/wal/index.js';
import { RecordingMachine } from '../log/helpers.js';
import { plain, range } from '../wal/helpers.js';

const temps: string[] = [];
afterEach(() => {
  for (const t of temps.splice(0)) rmSync(t, { recursive: true, force: true });
});

it('a data directory of format 2 (earlier 0.2.0 builds) opens with every record, and takes new ones', async () => {
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
  const again = new RecordingMachine();
  const reopened = await ReplicatedLog.open({ dataDir: dir, stateMachine: again, snapshotEvery: 20, segmentBytes: 4096 });
  await reopened.barrier();
  expect(again.applied.at(-1)?.data).toBe('after the upgrade');
  await reopened.close();
});

it('a WAL segment of format 2 takes appends as such, and the segments after it are of format 3', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'raftlog-upgrade-'));
  temps.push(dir);
  cpSync(new URL('../fixtures/format-2/wal', import.meta.url).pathname, dir, { recursive: true });
  const v2 = '0000000000000002-0000000000000020.wal';
  let wal = await Wal.open(dir, { segmentBytes: 1 << 20 });
  const last = wal.lastIndex;
  await wal.append(range(last + 1, last + 11)); // into the format 2 segment: no stamps
  await wal.close();
  wal = await Wal.open(dir, { segmentBytes: 4096, cacheBytes: 0 });
  expect(wal.repair).toBeNull();
  expect(wal.stats().segments).toBe(1);
  await wal.append(range(last + 11, last + 101)); // fills it, then new segments
  await wal.close();
  const files = readdirSync(dir).filter((f) => f.endsWith('.wal'));
  expect(files[0]).toBe(v2);
  expect(files.slice(1).every((f) => /^[0-9a-f]{16}-[0-9a-f]{16}-[0-9a-f]{12}\.wal$/.test(f))).toBe(true);
  expect(files.length).toBeGreaterThan(2);
  wal = await Wal.open(dir, { segmentBytes: 4096, cacheBytes: 0 });
  expect(wal.repair).toBeNull();
  expect(plain(wal.entriesSync(last + 1, last + 101))).toEqual(plain(range(last + 1, last + 101)));
  await wal.close();
});
