// A snapshot file is disk input like any other: nothing in it is used before its
// lengths, its meta and its checksum say it is whole and is the snapshot asked for.
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import {
  closeSync,
  constants,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FileSnapshotStore, readSnapshotFile, readSnapshotFileData } from '../../src/storage/snapshot-store.js';
import { fdsUnder } from '../log/helpers.js';

const crc32c = createRequire(import.meta.url)('crc-32/crc32c') as { buf(data: Uint8Array, seed?: number): number };
const conf = { voters: [1, 2, 3], learners: [4] };
const temps: string[] = [];
afterEach(() => {
  vi.restoreAllMocks();
  for (const t of temps.splice(0)) rmSync(t, { recursive: true, force: true });
});

async function stored(data: Uint8Array = Buffer.from('the state machine')): Promise<{ store: FileSnapshotStore; file: string; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'raftlog-snap-'));
  temps.push(dir);
  const store = await FileSnapshotStore.open(join(dir, 'a', 'b'));
  await store.save({ meta: { index: 7, term: 3, conf }, data });
  const d = join(dir, 'a', 'b');
  return { store, file: join(d, readdirSync(d)[0]!), dir: d };
}

/** Settles as `p` does, or rejects if it is still waiting after a while (a read blocked on a FIFO, say). */
async function promptly<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: still waiting after 3 s`)), 3000)));
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Frees a reader blocked opening the FIFO at `file`, if any: opening it to write lets every waiting reader through. */
function unblock(file: string): void {
  try {
    closeSync(openSync(file, constants.O_WRONLY | constants.O_NONBLOCK));
  } catch {
    // ENXIO: no reader is waiting
  }
}

async function drain(data: AsyncIterable<Uint8Array>): Promise<number> {
  let n = 0;
  for await (const c of data) n += c.byteLength;
  return n;
}

/** Rewrites a file's bytes and fixes its checksum, so only the check under test can refuse it. */
function rewrite(file: string, edit: (b: Buffer) => Buffer): void {
  const b = edit(readFileSync(file));
  b.writeUInt32LE(crc32c.buf(b.subarray(0, b.length - 4)) >>> 0, b.length - 4);
  writeFileSync(file, b);
}

describe('snapshot files', () => {
  it('round-trip, checksummed with CRC32C, in a directory created with its missing parents', async () => {
    const data = Buffer.alloc(3 * 1024 * 1024 + 5, 7);
    const { store, file } = await stored(data);
    const bytes = readFileSync(file);
    expect(bytes.subarray(0, 8).toString()).toBe('RLSNAP02');
    expect(bytes.readUInt32LE(bytes.length - 4)).toBe(crc32c.buf(bytes.subarray(0, bytes.length - 4)) >>> 0);
    const snap = await store.load(7, 3);
    expect(snap.meta).toEqual({ index: 7, term: 3, conf });
    const chunks: Uint8Array[] = [];
    for await (const c of store.read(snap)) chunks.push(c);
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
  });

  it('a snapshot file is readable by its owner alone, whatever the umask, and a link planted under its temporary name is not written through', async () => {
    const old = process.umask(0);
    try {
      const { file } = await stored();
      expect((statSync(file).mode & 0o777).toString(8)).toBe('600');
    } finally {
      process.umask(old);
    }
    const dir = mkdtempSync(join(tmpdir(), 'raftlog-snap-'));
    temps.push(dir);
    const store = await FileSnapshotStore.open(join(dir, 'snapshots'));
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'untouched');
    symlinkSync(victim, join(dir, 'snapshots', 'snap-0000000000000007-3.snap.tmp'));
    await expect(store.save({ meta: { index: 7, term: 3, conf }, data: Buffer.from('state') })).rejects.toMatchObject({ code: 'ELOOP' });
    expect(readFileSync(victim, 'utf8')).toBe('untouched');
  });

  it('with create: false, a missing directory is not made: the store holds nothing, and a snapshot asked for is SNAPSHOT_MISSING naming it', async () => {
    const base = mkdtempSync(join(tmpdir(), 'raftlog-snap-'));
    temps.push(base);
    const dir = join(base, 'snapshots');
    const store = await FileSnapshotStore.open(dir, { create: false });
    expect(existsSync(dir)).toBe(false);
    await expect(store.held()).resolves.toEqual([]);
    await expect(store.load(7, 3)).rejects.toMatchObject({ code: 'SNAPSHOT_MISSING', message: expect.stringContaining(`${dir} has no such file`) });
    expect(existsSync(dir)).toBe(false);
    // An existing one is opened as ever: what a save left behind is removed.
    mkdirSync(dir);
    writeFileSync(join(dir, 'snap-0000000000000007-3.snap.tmp'), 'partial');
    await FileSnapshotStore.open(dir, { create: false });
    expect(readdirSync(dir)).toEqual([]);
  });

  it('open refuses a bad directory or options argument with STORAGE_INVALID_ARGUMENT, making nothing', async () => {
    const base = mkdtempSync(join(tmpdir(), 'raftlog-snap-'));
    temps.push(base);
    const dir = join(base, 'snapshots');
    // null failed with a raw TypeError; a create of 'no' was taken as true and made the directory.
    const bad: Array<[unknown, unknown]> = [
      [dir, null],
      [dir, 5],
      [dir, { create: 'no' }],
      [42, {}],
      ['', {}],
    ];
    for (const [d, options] of bad) {
      await expect(FileSnapshotStore.open(d as string, options as never)).rejects.toMatchObject({ code: 'STORAGE_INVALID_ARGUMENT' });
    }
    expect(existsSync(dir)).toBe(false);
  });

  it('refuses damage and malformed metadata with SNAPSHOT_CORRUPT, whatever its checksum says', async () => {
    const cases: Array<[string, (b: Buffer) => Buffer, RegExp]> = [
      ['a truncated file', (b) => b.subarray(0, b.length - 9), /do not add up|checksum/],
      ['a huge meta length', (b) => (b.writeUInt32LE(0x7fff_ffff, 8), b), /meta of \d+ bytes is over/],
      ['a data length beyond the file', (b) => (b.writeBigUInt64LE(10n ** 12n, 12), b), /do not add up/],
      ['meta that is not JSON', (b) => (b.fill(0x7b, 20, 24), b), /not JSON/],
      ['meta with a string index', (b) => Buffer.from(b.toString('latin1').replace('"index":7', '"index":"7"'), 'latin1'), /do not add up|index or term/],
      ['meta with node id 0', (b) => Buffer.from(b.toString('latin1').replace('"voters":[1,', '"voters":[0,'), 'latin1'), /lists of node ids/],
    ];
    for (const [what, edit, why] of cases) {
      const { store, file } = await stored();
      rewrite(file, edit);
      await expect(store.load(7, 3), what).rejects.toMatchObject({ code: 'SNAPSHOT_CORRUPT', message: expect.stringMatching(why) });
    }
    // Well formed and checksummed, but at a term no node can reach: written by no raftlog node.
    const highDir = mkdtempSync(join(tmpdir(), 'raftlog-snap-'));
    temps.push(highDir);
    const high = await FileSnapshotStore.open(highDir);
    await high.save({ meta: { index: 7, term: 2 ** 53 - 1, conf }, data: Buffer.from('x') });
    await expect(high.load(7, 2 ** 53 - 1)).rejects.toMatchObject({ code: 'SNAPSHOT_CORRUPT', message: expect.stringMatching(/above/) });
    // Unchanged but for its checksum: the checksum alone refuses it.
    const { store, file } = await stored();
    const b = readFileSync(file);
    b[b.length - 1]! ^= 1;
    writeFileSync(file, b);
    await expect(store.load(7, 3)).rejects.toMatchObject({ code: 'SNAPSHOT_CORRUPT', message: expect.stringMatching(/checksum/) });
    await expect(store.load(8, 3)).rejects.toMatchObject({ code: 'SNAPSHOT_MISSING' });
  });

  it('a file of the earlier format, or of a later one, is refused with SNAPSHOT_VERSION naming it; another magic is SNAPSHOT_CORRUPT', async () => {
    const { store, file } = await stored();
    const good = readFileSync(file);
    for (const [magic, code, says] of [
      ['RLSNAP01', 'SNAPSHOT_VERSION', /in format 1,/],
      ['RLSNAP03', 'SNAPSHOT_VERSION', /in format 3,/],
      ['RLSNAP10', 'SNAPSHOT_VERSION', /in format 10,/],
      ['RLSNAP00', 'SNAPSHOT_CORRUPT', /bad header/],
      ['RLSNAP2x', 'SNAPSHOT_CORRUPT', /bad header/],
      ['XLSNAP02', 'SNAPSHOT_CORRUPT', /bad header/],
    ] as const) {
      writeFileSync(file, good);
      rewrite(file, (b) => (b.write(magic, 0, 'latin1'), b));
      const err = await store.load(7, 3).catch((e: unknown) => e as Error);
      expect(err, magic).toMatchObject({ code, message: expect.stringMatching(says) });
      await expect(readSnapshotFile(file), magic).rejects.toMatchObject({ code });
    }
  });

  it('is read in bounded chunks: loading checks it without holding its data, reading streams it', async () => {
    const data = Buffer.alloc(5 * 1024 * 1024, 1);
    const { store } = await stored(data);
    const sizes: number[] = [];
    const alloc = Buffer.alloc;
    vi.spyOn(Buffer, 'alloc').mockImplementation(((n: number, fill?: number) => {
      sizes.push(n);
      return alloc(n, fill);
    }) as typeof Buffer.alloc);
    const snap = await store.load(7, 3);
    expect(snap.data.byteLength).toBe(0); // a reference: the held file at 7/3
    expect(Math.max(...sizes)).toBeLessThanOrEqual(1024 * 1024);
    let total = 0;
    let largest = 0;
    for await (const c of store.read(snap)) {
      total += c.byteLength;
      largest = Math.max(largest, c.byteLength);
    }
    expect(total).toBe(data.length);
    expect(largest).toBeLessThanOrEqual(1024 * 1024);
  });

  it('a held snapshot damaged since it was loaded is refused by the read that streams it, at its checksum', async () => {
    const { store, file } = await stored(Buffer.alloc(3 * 1024 * 1024, 5));
    const snap = await store.load(7, 3);
    const b = readFileSync(file);
    b[b.length - 1024]! ^= 1; // a byte of the data, in its last chunk
    writeFileSync(file, b);
    await expect(drain(store.read(snap))).rejects.toMatchObject({ code: 'SNAPSHOT_CORRUPT', file, message: expect.stringMatching(/checksum mismatch/) });
  });

  it("refuses a FIFO in a held snapshot's place at once with SNAPSHOT_CORRUPT, instead of waiting on it", async () => {
    const { store, file, dir } = await stored();
    unlinkSync(file);
    execFileSync('mkfifo', [file]);
    const snap = { meta: { index: 7, term: 3, conf }, data: new Uint8Array(0) };
    const refused = { code: 'SNAPSHOT_CORRUPT', file, message: expect.stringMatching(/not a regular file/) };
    try {
      // Refused when the store opens, and by every read of a store already open.
      await expect(promptly(FileSnapshotStore.open(dir), 'store open')).rejects.toMatchObject(refused);
      expect(existsSync(file)).toBe(true);
      await expect(promptly(store.load(7, 3), 'load')).rejects.toMatchObject(refused);
      await expect(promptly(drain(store.read(snap)), 'read')).rejects.toMatchObject(refused);
      await expect(promptly(store.open(snap), 'open to send')).rejects.toMatchObject(refused);
      await expect(promptly(readSnapshotFile(file), 'readSnapshotFile')).rejects.toMatchObject(refused);
    } finally {
      unblock(file);
    }
  });

  it("refuses a symbolic link in a held snapshot's place with SNAPSHOT_CORRUPT, even to a good snapshot file", async () => {
    const { store, file, dir } = await stored();
    const outside = join(dir, '..', 'outside.snap');
    renameSync(file, outside);
    symlinkSync(outside, file);
    const snap = { meta: { index: 7, term: 3, conf }, data: new Uint8Array(0) };
    const refused = { code: 'SNAPSHOT_CORRUPT', file, message: expect.stringMatching(/symbolic link/) };
    await expect(FileSnapshotStore.open(dir)).rejects.toMatchObject({ code: 'SNAPSHOT_CORRUPT', file, message: expect.stringMatching(/not a regular file/) });
    await expect(store.load(7, 3)).rejects.toMatchObject(refused);
    await expect(drain(store.read(snap))).rejects.toMatchObject(refused);
    await expect(store.open(snap)).rejects.toMatchObject(refused);
    await expect(readSnapshotFile(file)).rejects.toMatchObject(refused);
    // A backup an operator names through a link (raftlog snapshot restore) is theirs to make.
    expect((await readSnapshotFile(file, false, { followLinks: true })).meta).toEqual({ index: 7, term: 3, conf });
  });

  it('a held snapshot emptied, or cut inside its header, since it was checked is refused when opened to send, and no descriptor is left open', async () => {
    for (const size of [0, 10]) {
      const { store, file, dir } = await stored();
      writeFileSync(file, readFileSync(file).subarray(0, size));
      const snap = { meta: { index: 7, term: 3, conf }, data: new Uint8Array(0) };
      // Released as the transport releases a stream it will not read: a stream of no bytes is never read.
      const outcome = await store.open(snap).then(
        async (out) => {
          await out.chunks[Symbol.asyncIterator]().return?.(undefined);
          return `opened, ${out.size} bytes`;
        },
        (err: unknown) => err,
      );
      expect(fdsUnder(dir), `cut to ${size} bytes`).toEqual([]);
      expect(outcome).toMatchObject({ code: 'SNAPSHOT_CORRUPT', file, message: expect.stringMatching(/too short for a header/) });
    }
  });

  it('refuses to open over a directory named like a snapshot or a temporary file, which a prune could not remove', async () => {
    for (const name of [
      'snap-0000000000000002-1.snap',
      'snap-0000000000000009-3.snap.tmp',
      'spool-00112233445566ff.part',
      'snap-0000000000000002-1.snap.recv',
    ]) {
      const { dir } = await stored();
      mkdirSync(join(dir, name));
      await expect(FileSnapshotStore.open(dir), name).rejects.toMatchObject({ code: 'SNAPSHOT_CORRUPT', file: join(dir, name) });
      expect(statSync(join(dir, name)).isDirectory()).toBe(true);
    }
  });

  it('a received snapshot must be the one announced in every part of its configuration, the joint parts included', async () => {
    const plain = { voters: [1, 2, 3], learners: [] };
    const joint = { voters: [1, 2, 3], learners: [], votersOutgoing: [1, 2, 4], learnersNext: [4], autoLeave: true };
    const variants = [plain, joint, { ...joint, learnersNext: undefined }, { ...joint, autoLeave: undefined }, { ...joint, votersOutgoing: [1, 2, 4, 5] }];
    const receiver = await stored();
    for (const [i, sent] of variants.entries()) {
      for (const [j, announced] of variants.entries()) {
        const sender = await stored();
        const meta = { index: 7, term: 3, conf: sent };
        await sender.store.save({ meta, data: Buffer.from('the state machine') });
        const out = await sender.store.open({ meta, data: new Uint8Array(0) });
        const spool = await receiver.store.spool({ index: 7, term: 3, conf: announced }, out.size);
        for await (const c of out.chunks) await spool.write(c);
        const what = `file ${i}, announced ${j}`;
        if (i === j) {
          const ref = await spool.finish();
          await receiver.store.discard({ meta, data: ref });
        } else {
          await expect(spool.finish(), what).rejects.toMatchObject({
            code: 'SNAPSHOT_CORRUPT',
            message: expect.stringMatching(/another snapshot than the one announced/),
          });
          await expect(drain(readSnapshotFileData(sender.file, { index: 7, term: 3, conf: announced })), what).rejects.toMatchObject({
            code: 'SNAPSHOT_CORRUPT',
            message: expect.stringMatching(/not the snapshot asked for/),
          });
        }
        expect(
          readdirSync(receiver.dir).filter((n) => n.startsWith('spool-')),
          what,
        ).toEqual([]);
      }
    }
  });

  /** A snapshot at 12 saved by one store and streamed whole into another's spool, not yet finished. */
  async function sentAt12() {
    const sender = await stored();
    const receiver = await stored();
    const meta = { index: 12, term: 4, conf };
    await sender.store.save({ meta, data: Buffer.from('the state at 12') });
    const out = await sender.store.open({ meta, data: new Uint8Array(0) });
    const spool = await receiver.store.spool(meta, out.size);
    for await (const c of out.chunks) await spool.write(c);
    return { receiver, meta, spool, size: out.size };
  }

  it('a received snapshot is held with a mark beside it until the next prune: held() tells it from one the node took', async () => {
    const { receiver, meta, spool } = await sentAt12();
    await receiver.store.install({ meta, data: await spool.finish() });
    expect(readdirSync(receiver.dir).sort()).toEqual(['snap-0000000000000007-3.snap', 'snap-0000000000000012-4.snap', 'snap-0000000000000012-4.snap.recv']);
    expect(await receiver.store.held()).toEqual([
      { index: 7, term: 3 },
      { index: 12, term: 4, received: true },
    ]);
    expect(await (await FileSnapshotStore.open(receiver.dir)).held()).toEqual(await receiver.store.held()); // a reopen keeps the mark
    await receiver.store.prune(12);
    expect(readdirSync(receiver.dir)).toEqual(['snap-0000000000000012-4.snap']);
    expect(await receiver.store.held()).toEqual([{ index: 12, term: 4 }]);
  });

  it('a received snapshot not yet installed, asked to be sent on, or a reference the store never made, is refused STORAGE_INVALID_ARGUMENT, not a TypeError', async () => {
    const { receiver, meta, spool, size } = await sentAt12();
    const received = { meta, data: await spool.finish() };
    await expect(receiver.store.open(received)).rejects.toMatchObject({
      code: 'STORAGE_INVALID_ARGUMENT',
      message: 'a received snapshot (index 12, term 4) is sent on only once installed',
    });
    await expect(spool.write(Buffer.from('late'))).rejects.toMatchObject({ code: 'STORAGE_INVALID_ARGUMENT' });
    await expect(receiver.store.open({ meta, data: Buffer.from('no spool of this store') })).rejects.toMatchObject({
      code: 'STORAGE_INVALID_ARGUMENT',
      message: 'snapshot data is not a reference this store made',
    });
    // Installed, it is sent on.
    await receiver.store.install(received);
    expect((await receiver.store.open({ meta, data: new Uint8Array(0) })).size).toBe(size);
  });

  it('a mark of a received snapshot that never took its name (a crash between the two) is removed on open', async () => {
    const { dir } = await stored();
    writeFileSync(join(dir, 'snap-0000000000000009-3.snap.recv'), '');
    writeFileSync(join(dir, 'snap-0000000000000007-3.snap.recv'), ''); // beside its snapshot: kept
    await FileSnapshotStore.open(dir);
    expect(readdirSync(dir).sort()).toEqual(['snap-0000000000000007-3.snap', 'snap-0000000000000007-3.snap.recv']);
  });

  it('a save that never finished is removed on open; the directory exists after open', async () => {
    const { dir } = await stored();
    writeFileSync(join(dir, 'snap-0000000000000009-3.snap.tmp'), 'half');
    await FileSnapshotStore.open(dir);
    expect(existsSync(join(dir, 'snap-0000000000000009-3.snap.tmp'))).toBe(false);
    expect(readdirSync(dir)).toHaveLength(1);
  });
});
