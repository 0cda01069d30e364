import { constants } from 'node:buffer';
import { pack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { KvSnapshotCorruptError } from '../../src/kv/index.js';
import { KvStateMachine, encodeCommand, type KvCommand } from '../../src/kv/kv-state-machine.js';

const b = (s: string): Buffer => Buffer.from(s);
/** `bytes` as a snapshot stream of `size`-byte chunks (one chunk by default). */
const inChunks = (bytes: Uint8Array, size = bytes.length) =>
  (async function* () {
    for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
  })();
let index = 0;
const apply = (sm: KvStateMachine, cmd: KvCommand) => sm.apply({ index: ++index, term: 1, offset: 0, data: encodeCommand(cmd) });

describe('KvStateMachine', () => {
  it('applies SET, DEL and INCR with Redis results', () => {
    const sm = new KvStateMachine();
    expect(apply(sm, ['SET', b('a'), b('1')])).toEqual({ ok: 'OK' });
    expect(apply(sm, ['INCR', b('a')])).toEqual({ int: 2 });
    expect(apply(sm, ['INCR', b('fresh')])).toEqual({ int: 1 });
    expect(apply(sm, ['SET', b('s'), b('text')])).toEqual({ ok: 'OK' });
    expect(apply(sm, ['INCR', b('s')])).toEqual({ error: 'ERR value is not an integer or out of range' });
    expect(apply(sm, ['SET', b('big'), b('9007199254740991')])).toEqual({ ok: 'OK' });
    expect(apply(sm, ['INCR', b('big')])).toEqual({ error: 'ERR value is not an integer or out of range' });
    expect(apply(sm, ['DEL', b('a'), b('nope'), b('s')])).toEqual({ int: 2 });
    expect(sm.get(b('a'))).toBeUndefined();
    expect(sm.get(b('fresh'))?.toString()).toBe('1');
  });

  it('is binary-safe in keys and values', () => {
    const sm = new KvStateMachine();
    const key = Buffer.from([0, 255, 10, 13]);
    const value = Buffer.from([1, 2, 3, 0]);
    apply(sm, ['SET', key, value]);
    expect(sm.get(Buffer.from(key))).toEqual(value);
  });

  it('answers a malformed log entry with an error result, identically on every node, without throwing', () => {
    const sm = new KvStateMachine();
    expect(sm.apply({ index: 1, term: 1, offset: 0, data: new Uint8Array([0xc1]) })).toEqual({ error: 'ERR malformed command in the log' });
    expect(sm.apply({ index: 2, term: 1, offset: 0, data: encodeCommand(['SET', b('only-key')] as unknown as KvCommand) })).toEqual({
      error: 'ERR malformed command in the log',
    });
  });

  it('restores exactly what it snapshotted', async () => {
    const sm = new KvStateMachine();
    for (let i = 0; i < 100; i++) apply(sm, ['SET', b(`k${i}`), b(`v${i}`)]);
    apply(sm, ['DEL', b('k7')]);
    const copy = new KvStateMachine();
    await copy.restore(sm.snapshot());
    expect(copy.size).toBe(99);
    for (let i = 0; i < 100; i++) expect(copy.get(b(`k${i}`))?.toString()).toBe(i === 7 ? undefined : `v${i}`);
  });

  it('snapshots the state of the call while later commands apply, and restores from chunks of any size', async () => {
    const sm = new KvStateMachine();
    const big = Buffer.alloc(700 * 1024, 3); // spans several encoded batches
    for (let i = 0; i < 20; i++) apply(sm, ['SET', b(`k${i}`), i === 5 ? big : b(`v${i}`)]);
    const snap = sm.snapshot();
    apply(sm, ['SET', b('k1'), b('later')]);
    apply(sm, ['DEL', b('k2')]);
    const bytes: Uint8Array[] = [];
    for await (const c of snap) bytes.push(c);
    const all = Buffer.concat(bytes);
    // Re-cut into 7-byte chunks: entries and their length fields straddle chunk ends.
    const copy = new KvStateMachine();
    await copy.restore(inChunks(all, 7));
    expect(copy.size).toBe(20);
    expect(copy.get(b('k1'))?.toString()).toBe('v1');
    expect(copy.get(b('k2'))?.toString()).toBe('v2');
    expect(copy.get(b('k5'))?.equals(big)).toBe(true);
    await expect(copy.restore(inChunks(all.subarray(0, all.length - 3)))).rejects.toMatchObject({
      code: 'KV_SNAPSHOT_CORRUPT',
      message: expect.stringMatching(/ends inside an entry/),
    });
    // Nothing was replaced by the refused restore.
    expect(copy.size).toBe(20);
  });

  it('refuses bytes of neither format with KV_SNAPSHOT_CORRUPT, keeping the map it had', async () => {
    const copy = new KvStateMachine();
    apply(copy, ['SET', b('kept'), b('1')]);
    for (const bytes of [pack({ not: 'pairs' }), pack([[b('k')]]), pack([['k', 1]]), Buffer.from([0xc1])]) {
      await expect(copy.restore(inChunks(bytes))).rejects.toBeInstanceOf(KvSnapshotCorruptError);
      await expect(copy.restore(inChunks(bytes))).rejects.toMatchObject({ code: 'KV_SNAPSHOT_CORRUPT' });
    }
    expect(copy.size).toBe(1);
    expect(copy.get(b('kept'))?.toString()).toBe('1');
  });

  it('restores a snapshot of the earlier format (one msgpack list)', async () => {
    const copy = new KvStateMachine();
    await copy.restore(
      inChunks(
        pack([
          [b('a'), b('1')],
          [b('b'), b('2')],
        ]),
      ),
    );
    expect(copy.size).toBe(2);
    expect(copy.get(b('b'))?.toString()).toBe('2');
  });

  it('restores an empty map snapshotted in the earlier format, shorter than the magic', async () => {
    // The earlier snapshot() was pack([...map]): one byte, 0x90, for an empty map.
    const copy = new KvStateMachine();
    apply(copy, ['SET', b('gone'), b('1')]);
    await copy.restore(inChunks(pack([])));
    expect(copy.size).toBe(0);
    // Still refused: the first bytes of a current snapshot, cut short inside the magic.
    await expect(copy.restore(inChunks(Buffer.from('RLKV')))).rejects.toMatchObject({ code: 'KV_SNAPSHOT_CORRUPT' });
  });
});

describe('KvStateMachine snapshot format (RLKV1)', () => {
  /** The layout written out by hand: magic, then per entry u32 LE key length, key, u32 LE value length, value. */
  const rlkv1 = (pairs: Array<[Buffer, Buffer]>): Buffer => {
    const parts: Buffer[] = [Buffer.from('RLKV1\n')];
    for (const [k, v] of pairs) {
      const kl = Buffer.alloc(4);
      kl.writeUInt32LE(k.length);
      const vl = Buffer.alloc(4);
      vl.writeUInt32LE(v.length);
      parts.push(kl, k, vl, v);
    }
    return Buffer.concat(parts);
  };

  it('writes the same bytes as before, in insertion order, across chunk ends and for entries larger than a chunk', async () => {
    const sm = new KvStateMachine();
    const pairs: Array<[Buffer, Buffer]> = [
      [b('a'), b('1')],
      [b(''), b('')],
      [Buffer.from([0, 255, 128]), Buffer.from([9, 0, 9])],
      [Buffer.alloc(300, 0xe9), b('a long latin1 key')],
      [b('big'), Buffer.alloc(600 * 1024, 7)],
      ...Array.from({ length: 30_000 }, (_, i): [Buffer, Buffer] => [b(`key${i}`), b(`value${i}`)]),
      [Buffer.alloc(300 * 1024, 0x41), b('a key larger than a chunk')],
      [b('last'), Buffer.alloc(255 * 1024, 1)],
    ];
    for (const [k, v] of pairs) apply(sm, ['SET', k, v]);
    const parts: Uint8Array[] = [];
    for await (const c of sm.snapshot()) parts.push(c);
    expect(Buffer.concat(parts).equals(rlkv1(pairs))).toBe(true);
  });

  it('restores a snapshot written by the earlier encoder, and keeps the last of duplicate keys', async () => {
    const bytes = rlkv1([
      [b('a'), b('first')],
      [b('b'), b('2')],
      [b('a'), b('second')],
      [b('c'), Buffer.alloc(0)],
      [b('b'), b('again')],
    ]);
    const copy = new KvStateMachine();
    await copy.restore(inChunks(bytes, 5));
    expect(copy.size).toBe(3);
    expect(copy.get(b('a'))?.toString()).toBe('second');
    expect(copy.get(b('b'))?.toString()).toBe('again');
    expect(copy.get(b('c'))?.length).toBe(0);
  });

  it('restores an empty snapshot as an empty map, and snapshots an empty map as the magic alone', async () => {
    const sm = new KvStateMachine();
    const parts: Uint8Array[] = [];
    for await (const c of sm.snapshot()) parts.push(c);
    expect(Buffer.concat(parts).toString('latin1')).toBe('RLKV1\n');
    apply(sm, ['SET', b('x'), b('1')]);
    await sm.restore((async function* () {})());
    expect(sm.size).toBe(0);
  });
});

it('refuses a key longer than a string can be from its length, before gathering its bytes', async () => {
  const head = Buffer.alloc(10);
  Buffer.from('RLKV1\n').copy(head);
  head.writeUInt32LE(constants.MAX_STRING_LENGTH + 1, 6);
  const chunk = Buffer.alloc(64 * 1024 * 1024); // the key's bytes, as views of one buffer
  let pulled = 0;
  const stream = (async function* () {
    yield head;
    for (let left = constants.MAX_STRING_LENGTH + 1; left > 0; left -= chunk.length) {
      pulled++;
      yield chunk.subarray(0, Math.min(chunk.length, left));
    }
    yield Buffer.alloc(4); // an empty value
  })();
  const sm = new KvStateMachine();
  apply(sm, ['SET', b('kept'), b('1')]);
  await expect(sm.restore(stream)).rejects.toMatchObject({ code: 'KV_SNAPSHOT_CORRUPT' });
  expect(pulled).toBe(0);
  expect(sm.get(b('kept'))?.toString()).toBe('1');
});

it('restores empty keys and values wherever the chunks are cut', async () => {
  const parts: Buffer[] = [Buffer.from('RLKV1\n')];
  for (const [k, v] of [
    ['', 'e'],
    ['k', ''],
    ['', ''],
  ] as const) {
    const kl = Buffer.alloc(4);
    kl.writeUInt32LE(k.length);
    const vl = Buffer.alloc(4);
    vl.writeUInt32LE(v.length);
    parts.push(kl, b(k), vl, b(v));
  }
  const bytes = Buffer.concat(parts);
  for (let cut = 1; cut < bytes.length; cut++) {
    const copy = new KvStateMachine();
    await copy.restore(
      (async function* () {
        yield bytes.subarray(0, cut);
        yield bytes.subarray(cut);
      })(),
    );
    expect(copy.size).toBe(2);
    expect(copy.get(b(''))?.length).toBe(0);
    expect(copy.get(b('k'))?.length).toBe(0);
  }
});
