// The log's snapshot data (members, then the application's bytes) is read from a file
// whose checksum holds, which says nothing about who wrote it: anything malformed is
// refused with SNAPSHOT_CORRUPT, as a damaged snapshot file is, and never a bare TypeError.
import { createRequire } from 'node:module';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pack } from 'msgpackr';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main as recover } from '../../src/cli/recover.js';
import { ReplicatedLog } from '../../src/log/replicated-log.js';
import { decodeSnapshotData, encodeSnapshotData } from '../../src/log/snapshot-data.js';
import { SnapshotCorruptError, SnapshotDataVersionError } from '../../src/storage/errors.js';
import { tempDir } from './helpers.js';

const crc32c = createRequire(import.meta.url)('crc-32/crc32c') as { buf(data: Uint8Array, seed?: number): number };
const cleanups: Array<() => void> = [];
afterEach(() => {
  vi.restoreAllMocks();
  for (const c of cleanups.splice(0)) c();
});

/** `chunks` as a source, and whether the reader released them (return() was called). */
function source(...chunks: Uint8Array[]): { chunks: AsyncIterable<Uint8Array>; released: () => boolean } {
  let released = false;
  async function* gen(): AsyncGenerator<Uint8Array> {
    try {
      yield* chunks;
    } finally {
      released = true;
    }
  }
  return { chunks: gen(), released: () => released };
}

async function gather(data: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of data) parts.push(c);
  return Buffer.concat(parts);
}

/** Format 2's header for a member list of `len` bytes. */
const head = (len: number): Buffer => {
  const b = Buffer.from('RLSM\0\0\0\0', 'latin1');
  b.writeUInt32LE(len, 4);
  return b;
};

describe('decodeSnapshotData', () => {
  it('reads format 2, as earlier 0.2.0 builds wrote it', async () => {
    const members: Array<[number, string]> = [[1, '10.0.0.1:7000']];
    const list = pack(members);
    const d = await decodeSnapshotData(source(Buffer.concat([head(list.length), list, Buffer.from('v2 state')])).chunks, 'at index 7, term 3');
    expect(d.members).toEqual(members);
    expect((await gather(d.app)).toString()).toBe('v2 state');
  });

  it('refuses data of a later format with SNAPSHOT_DATA_VERSION naming it, not as corrupt, and releases its source', async () => {
    const members: Array<[number, string]> = [[1, '10.0.0.1:7000']];
    const encoded = await gather(encodeSnapshotData(members, source(Buffer.from('state')).chunks));
    const later = Buffer.from(encoded);
    later.writeUInt32LE(4, 8); // the version after the magic and its marker
    const src = source(later);
    const err = await decodeSnapshotData(src.chunks, 'at index 7, term 3').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(SnapshotDataVersionError);
    expect(err).toMatchObject({ code: 'SNAPSHOT_DATA_VERSION', message: expect.stringMatching(/at index 7, term 3 holds data in format 4/) });
    expect(src.released()).toBe(true);
    // An earlier version under the marker was never written: damage, not a later release.
    const earlier = Buffer.from(encoded);
    earlier.writeUInt32LE(2, 8);
    await expect(decodeSnapshotData(source(earlier).chunks, 'at index 7, term 3')).rejects.toMatchObject({ code: 'SNAPSHOT_CORRUPT' });
  });

  it('reads both formats back', async () => {
    const members: Array<[number, string]> = [
      [1, '10.0.0.1:7000'],
      [2, '10.0.0.2:7000'],
    ];
    const encoded = await gather(encodeSnapshotData(members, source(Buffer.from('the '), Buffer.from('state')).chunks));
    const d = await decodeSnapshotData(source(encoded.subarray(0, 5), encoded.subarray(5)).chunks, 'at index 7, term 3');
    expect(d.members).toEqual(members);
    expect((await gather(d.app)).toString()).toBe('the state');
    const v1 = await decodeSnapshotData(source(pack([1, members, Buffer.from('old')])).chunks, 'at index 7, term 3');
    expect(v1.members).toEqual(members);
    expect((await gather(v1.app)).toString()).toBe('old');
  });

  it('refuses malformed data with SNAPSHOT_CORRUPT naming the snapshot, and releases its source', async () => {
    const cases: Array<[string, Buffer, RegExp]> = [
      ['bytes of no format', Buffer.from('XXXXXXXXXXXX'), /bad header/],
      ['a header cut short', Buffer.from('RLS'), /bad header/],
      ['a member list over 1 MiB', head(1024 * 1024 + 1), /member list of \d+ bytes/],
      ['a member list cut short', Buffer.concat([head(10), Buffer.from([0x92])]), /truncated member list/],
      ['a member list that is not msgpack', Buffer.concat([head(2), Buffer.from([0xd9, 5])]), /not msgpack/],
      ['members that are not pairs', Buffer.concat([head(pack([[0, 'x']]).length), pack([[0, 'x']])]), /not \[id, address\] pairs/],
      ['a format 1 value that is not msgpack', Buffer.from([0x93, 0x01, 0xd9, 5]), /not msgpack/],
      ['a format 1 value of another shape', pack([2, [], Buffer.from('x')]), /bad format 1 value/],
      ['format 1 members that are not pairs', pack([1, [['1', 'x']], Buffer.from('x')]), /not \[id, address\] pairs/],
    ];
    for (const [what, bytes, why] of cases) {
      const src = source(bytes);
      const err = await decodeSnapshotData(src.chunks, 'at index 7, term 3').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, what).toBeInstanceOf(SnapshotCorruptError);
      expect(err, what).toMatchObject({ code: 'SNAPSHOT_CORRUPT', message: expect.stringMatching(why) });
      expect((err as Error).message, what).toMatch(/snapshot file at index 7, term 3 is corrupt: its data is not in the raftlog snapshot format/);
      expect(src.released(), what).toBe(true);
    }
  });

  it('gathers a format 1 value only up to the most a node could have written (4 GiB), then refuses it', async () => {
    // The same MiB again and again: a file of 6 GiB whose data starts like format 1, without allocating it.
    const chunk = Buffer.alloc(1024 * 1024, 0x93);
    let pulled = 0;
    let released = false;
    async function* huge(): AsyncGenerator<Uint8Array> {
      try {
        for (; pulled < 6 * 1024; pulled++) yield chunk;
      } finally {
        released = true;
      }
    }
    await expect(decodeSnapshotData(huge(), 'at index 7, term 3')).rejects.toMatchObject({
      code: 'SNAPSHOT_CORRUPT',
      message: expect.stringMatching(/a format 1 value of more than 4294967296 bytes/),
    });
    expect(pulled).toBeLessThanOrEqual(4 * 1024 + 1);
    expect(released).toBe(true);
  });
});

describe('a snapshot whose data is malformed, its checksum whole', () => {
  async function damaged(): Promise<string> {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const log = await ReplicatedLog.open({ dataDir: dir, snapshotEvery: 10 });
    for (let i = 0; i < 20; i++) await log.append(Uint8Array.of(i));
    await log.close();
    const snaps = join(dir, 'snapshots');
    const files = readdirSync(snaps);
    expect(files).toHaveLength(1);
    const file = join(snaps, files[0]!);
    const b = readFileSync(file);
    b.write('XXXX', 20 + b.readUInt32LE(8), 'latin1'); // the data's magic, after the file's header and meta
    b.writeUInt32LE(crc32c.buf(b.subarray(0, b.length - 4)) >>> 0, b.length - 4);
    writeFileSync(file, b);
    return dir;
  }

  it('fails open with SNAPSHOT_CORRUPT', async () => {
    const dir = await damaged();
    await expect(ReplicatedLog.open({ dataDir: dir })).rejects.toMatchObject({
      code: 'SNAPSHOT_CORRUPT',
      message: expect.stringMatching(new RegExp(`snapshot file ${dir}/snapshots/snap-\\d+-1\\.snap is corrupt: .*bad header`)),
    });
  });

  it('fails raftlog recover with SNAPSHOT_CORRUPT, not as an internal error', async () => {
    const dir = await damaged();
    const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    vi.spyOn(console, 'log').mockImplementation(() => undefined);
    expect(await recover(['--force-new-cluster', '--data', dir, '--id', '1', '--yes'])).toBe(1);
    expect(String(err.mock.calls[0]?.[0])).toMatch(/^raftlog recover: SNAPSHOT_CORRUPT: .*bad header/);
  });
});
