// Data directories written by earlier releases keep opening. Each fixture was
// made by test/fixtures/make-format-<n>.ts with the release that introduced it.
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it, vi } from 'vitest';
import { main as inspect } from '../../src/cli/inspect.js';
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

it('a format 2 directory upgraded in place: old and new records in order across restarts, new writes in the new formats, and inspect reads it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'raftlog-upgrade-'));
  temps.push(dir);
  cpSync(new URL('../fixtures/format-2', import.meta.url).pathname, dir, { recursive: true });
  const old = Array.from({ length: 50 }, (_, i) => `record ${i}`);
  const added = Array.from({ length: 60 }, (_, i) => `new ${i}`);
  // No snapshot yet: the directory then holds a snapshot of data format 1, a segment of format 2 and segments of format 3.
  const quiet = { dataDir: dir, snapshotEvery: 1_000_000, segmentBytes: 4096 };
  let log = await ReplicatedLog.open({ ...quiet, stateMachine: new RecordingMachine() });
  await log.barrier();
  for (const r of added) await log.append(Buffer.from(r));
  const lastIndex = log.status().lastIndex;
  await log.close();
  const segments = readdirSync(join(dir, 'wal')).filter((f) => f.endsWith('.wal'));
  expect(segments[0]).toBe('0000000000000002-0000000000000020.wal');
  expect(segments.length).toBeGreaterThan(2);
  expect(segments.slice(1).every((f) => /^[0-9a-f]{16}-[0-9a-f]{16}-[0-9a-f]{12}\.wal$/.test(f))).toBe(true);
  const wal = await Wal.open(join(dir, 'wal'));
  // The entries this release wrote are record batches of version 3; the fixture's are of version 2.
  const first = wal.firstIndex; // past the snapshot at 40
  const versions = wal.entriesSync(first, lastIndex + 1).map((e) => [e.index, e.data[0]]);
  await wal.close();
  expect(versions.filter(([, v]) => v === 2).map(([i]) => i)).toEqual(Array.from({ length: 52 - first }, (_, k) => first + k));
  const mine = versions.filter(([i]) => i! > 52);
  expect(mine.length).toBeGreaterThan(0);
  expect(mine.every(([, v]) => v === 3)).toBe(true);

  const out: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  const code = await inspect([dir]);
  vi.restoreAllMocks();
  expect(code, out.join('\n')).toBe(0);
  expect(out.join('\n')).toContain(`WAL ${join(dir, 'wal')}: ${segments.length} segment(s), every checksum verified`);
  expect(out.join('\n')).toMatch(/snap-0000000000000040-1\.snap {2}index 40, term 1, \d+ bytes, voters 1, checksum verified/);

  let sm = new RecordingMachine();
  log = await ReplicatedLog.open({ ...quiet, stateMachine: sm });
  await log.barrier();
  expect(sm.restoredFrom).not.toBeNull();
  expect(sm.applied.map((a) => a.data)).toEqual([...old, ...added]);
  await log.close();

  // A snapshot taken now is written in data format 3, and read back with the log after it.
  log = await ReplicatedLog.open({ ...quiet, snapshotEvery: 20, stateMachine: new RecordingMachine() });
  await log.barrier();
  for (let i = 0; i < 25; i++) await log.append(Buffer.from(`late ${i}`));
  await log.close();
  const snaps = readdirSync(join(dir, 'snapshots')).filter((f) => f.endsWith('.snap'));
  expect(snaps.length).toBeGreaterThan(0);
  for (const f of snaps) {
    const bytes = readFileSync(join(dir, 'snapshots', f));
    expect(bytes.subarray(0, 8).toString('latin1')).toBe('RLSNAP02');
    const data = 20 + bytes.readUInt32LE(8);
    expect(bytes.subarray(data, data + 4).toString('latin1')).toBe('RLSM');
    expect([bytes.readUInt32LE(data + 4), bytes.readUInt32LE(data + 8)]).toEqual([0xffffffff, 3]);
  }
  sm = new RecordingMachine();
  log = await ReplicatedLog.open({ ...quiet, stateMachine: sm });
  await log.barrier();
  expect(sm.restoredFrom).not.toBeNull();
  expect(sm.applied.at(-1)?.data).toBe('late 24');
  await log.close();
});

it('appends to a format 2 segment cut short by a crash: the torn group is cut off, the group before it kept, and the segment takes appends again', async () => {
  const v2 = '0000000000000002-0000000000000020.wal';
  for (const damage of ['cut short', 'a bit flipped', 'a zeroed span'] as const) {
    const dir = mkdtempSync(join(tmpdir(), 'raftlog-upgrade-'));
    temps.push(dir);
    cpSync(new URL('../fixtures/format-2/wal', import.meta.url).pathname, dir, { recursive: true });
    const wal = await Wal.open(dir, { segmentBytes: 1 << 20 });
    const last = wal.lastIndex;
    await wal.append(range(last + 1, last + 6));
    const kept = readFileSync(join(dir, v2));
    await wal.append(range(last + 6, last + 11));
    // A crash: the directory as it stands while the WAL is open, its last group then damaged.
    const crashed = mkdtempSync(join(tmpdir(), 'raftlog-upgrade-'));
    temps.push(crashed);
    cpSync(dir, crashed, { recursive: true });
    await wal.close();
    const file = join(crashed, v2);
    const bytes = readFileSync(file);
    let end = 0; // where the second group begins: the first byte it changed
    while (kept[end] === bytes[end]) end++;
    if (damage === 'cut short') writeFileSync(file, bytes.subarray(0, end + 40));
    if (damage === 'a bit flipped') bytes[end + 60]! ^= 1;
    if (damage === 'a zeroed span') bytes.fill(0, end + 24, end + 64);
    if (damage !== 'cut short') writeFileSync(file, bytes);

    let w = await Wal.open(crashed, { segmentBytes: 4096, cacheBytes: 0 });
    expect(w.repair, damage).toMatchObject({ file, offset: end });
    expect(w.lastIndex).toBe(last + 5);
    expect(plain(w.entriesSync(last + 1, last + 6))).toEqual(plain(range(last + 1, last + 6)));
    await w.append(range(last + 6, last + 60, 2));
    await w.close();
    w = await Wal.open(crashed, { segmentBytes: 4096, cacheBytes: 0 });
    expect(w.repair).toBeNull();
    expect(plain(w.entriesSync(last + 1, last + 60))).toEqual(plain([...range(last + 1, last + 6), ...range(last + 6, last + 60, 2)]));
    await w.close();
  }
});
