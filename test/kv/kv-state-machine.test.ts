import { constants } from 'node:buffer';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { pack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { KvSnapshotCorruptError, KvSnapshotVersionError } from '../../src/kv/index.js';
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
  it('refuses a key that is not a Buffer with INVALID_ARGUMENT, and still answers', () => {
    const sm = new KvStateMachine();
    apply(sm, ['SET', b('a'), b('1')]);
    // Each a raw TypeError from deep inside: Buffer.from(undefined), reading buffer of null.
    for (const k of ['a', null, undefined, 5, [97]]) {
      expect(() => sm.get(k as never), String(k)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
      expect(() => sm.has(k as never), String(k)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    }
    expect(sm.get(b('a'))?.toString()).toBe('1');
    expect(sm.has(new Uint8Array([97]) as Buffer)).toBe(true);
  });

  it('applies SET, DEL and INCR with Redis results', () => {
    const sm = new KvStateMachine();
    expect(apply(sm, ['SET', b('a'), b('1')])).toEqual({ ok: 'OK' });
    expect(apply(sm, ['INCR', b('a')])).toEqual({ int: 2 });
    expect(apply(sm, ['INCR', b('fresh')])).toEqual({ int: 1 });
    expect(apply(sm, ['SET', b('s'), b('text')])).toEqual({ ok: 'OK' });
    expect(apply(sm, ['INCR', b('s')])).toEqual({ error: 'ERR value is not an integer or out of range' });
    expect(apply(sm, ['DEL', b('a'), b('nope'), b('s')])).toEqual({ int: 2 });
    expect(sm.get(b('a'))).toBeUndefined();
    expect(sm.get(b('fresh'))?.toString()).toBe('1');
  });

  it('INCR counts over the 64-bit signed range, as Redis does', () => {
    const sm = new KvStateMachine();
    const incr = (v: string) => {
      apply(sm, ['SET', b('n'), b(v)]);
      return apply(sm, ['INCR', b('n')]);
    };
    // Past 2^53 a double cannot count by one: a nanosecond timestamp (about 1.7e18) is such a counter.
    expect(incr('9007199254740991')).toEqual({ int: 9007199254740992n });
    expect(sm.get(b('n'))?.toString()).toBe('9007199254740992');
    expect(incr('1700000000000000000')).toEqual({ int: 1700000000000000001n });
    expect(incr('9223372036854775806')).toEqual({ int: 9223372036854775807n });
    expect(incr('-9223372036854775808')).toEqual({ int: -9223372036854775807n });
    expect(incr('9223372036854775807')).toEqual({ error: 'ERR increment or decrement would overflow' });
    expect(sm.get(b('n'))?.toString()).toBe('9223372036854775807');
    for (const bad of ['9223372036854775808', '-9223372036854775809', '-0', '01', '+1', ' 1', '1 ', '', '1e3', '0x10', '12345678901234567890'])
      expect(incr(bad), JSON.stringify(bad)).toEqual({ error: 'ERR value is not an integer or out of range' });
    // Small counters stay numbers, as before.
    expect(incr('41')).toEqual({ int: 42 });
    expect(incr('-1')).toEqual({ int: 0 });
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

  it("refuses a later version's snapshot (magic RLKV2) with KV_SNAPSHOT_VERSION, not as corrupt, keeping the map it had", async () => {
    const copy = new KvStateMachine();
    apply(copy, ['SET', b('kept'), b('1')]);
    const later = Buffer.concat([Buffer.from('RLKV2\n'), Buffer.from([1, 0, 0, 0]), b('k')]);
    for (const size of [1, later.length]) {
      const failed = copy.restore(inChunks(later, size));
      await expect(failed).rejects.toBeInstanceOf(KvSnapshotVersionError);
      await expect(failed).rejects.toMatchObject({ code: 'KV_SNAPSHOT_VERSION', message: expect.stringMatching(/"RLKV2\\n" by another version of raftlog/) });
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

describe('KvStateMachine restoring the earlier format (one msgpack list) from hostile bytes', () => {
  const bin = (bytes: Buffer): Buffer => {
    if (bytes.length < 0x100) return Buffer.concat([Buffer.from([0xc4, bytes.length]), bytes]);
    const head = Buffer.alloc(bytes.length < 0x10000 ? 3 : 5);
    head[0] = bytes.length < 0x10000 ? 0xc5 : 0xc6;
    if (bytes.length < 0x10000) head.writeUInt16BE(bytes.length, 1);
    else head.writeUInt32BE(bytes.length, 1);
    return Buffer.concat([head, bytes]);
  };
  const list32 = (count: number): Buffer => {
    const head = Buffer.alloc(5);
    head[0] = 0xdd;
    head.writeUInt32BE(count, 1);
    return head;
  };
  const pair = (k: Buffer, v: Buffer): Buffer => Buffer.concat([Buffer.from([0x92]), bin(k), bin(v)]);

  /** A map holding one key, to show that a refused restore replaced nothing. */
  const kept = (): KvStateMachine => {
    const sm = new KvStateMachine();
    apply(sm, ['SET', b('kept'), b('1')]);
    return sm;
  };
  const expectKept = (sm: KvStateMachine): void => {
    expect(sm.size).toBe(1);
    expect(sm.get(b('kept'))?.toString()).toBe('1');
  };

  it('restores what the earlier encoder wrote, with every list and bin size, from chunks of any size', async () => {
    const big = Buffer.alloc(70_000, 5); // bin32
    const mid = Buffer.alloc(5_000, 6); // bin16, kept as a Buffer
    for (const n of [3, 20, 70_000]) {
      const pairs: Array<[Buffer, Buffer]> = [
        [b('big'), big],
        [b('mid'), mid],
        [Buffer.alloc(300, 0xe9), b('')], // a bin16 key
        ...Array.from({ length: n - 3 }, (_, i): [Buffer, Buffer] => [b(`k${i}`), b(`v${i}`)]),
      ];
      const bytes = pack(pairs); // fixarray, array16, array32
      for (const size of n === 70_000 ? [64 * 1024] : [1, 7, bytes.length]) {
        const copy = kept();
        await copy.restore(inChunks(bytes, size));
        expect(copy.size).toBe(n);
        expect(copy.get(b('big'))?.equals(big)).toBe(true);
        expect(copy.get(b('mid'))?.equals(mid)).toBe(true);
        expect(copy.get(Buffer.alloc(300, 0xe9))?.length).toBe(0);
        if (n > 3) expect(copy.get(b(`k${n - 4}`))?.toString()).toBe(`v${n - 4}`);
        expect(copy.has(b('kept'))).toBe(false);
      }
    }
  });

  it('refuses crafted bytes with KV_SNAPSHOT_CORRUPT, keeping the map it had', async () => {
    const ok = pair(b('k'), b('v'));
    const cases: Record<string, Buffer> = {
      'fewer pairs than the list says': Buffer.concat([Buffer.from([0x93]), ok, ok]),
      'a list of 2^32 - 1 pairs holding one': Buffer.concat([list32(0xffffffff), ok]),
      'bytes after the list': Buffer.concat([Buffer.from([0x91]), ok, Buffer.from([0xc0])]),
      'a pair of three': Buffer.concat([Buffer.from([0x91, 0x93]), bin(b('k')), bin(b('v')), bin(b('w'))]),
      'a string key': Buffer.concat([Buffer.from([0x91, 0x92, 0xa1, 0x6b]), bin(b('v'))]),
      'a typed-array extension as the value': Buffer.concat([Buffer.from([0x91, 0x92]), bin(b('k')), Buffer.from([0xd4, 0x74, 0x01])]),
      'an error extension as the key': Buffer.concat([Buffer.from([0x91]), Buffer.from(pack([new Error('x'), b('v')]))]),
      'a value of 2^32 - 1 bytes holding three': Buffer.concat([Buffer.from([0x91, 0x92]), bin(b('k')), Buffer.from([0xc6, 0xff, 0xff, 0xff, 0xff, 1, 2, 3])]),
      'a key of 65535 bytes holding one': Buffer.from([0x91, 0x92, 0xc5, 0xff, 0xff, 0x6b]),
      'lists nested 100,000 deep': Buffer.concat([Buffer.alloc(100_000, 0x91), Buffer.from([0x90])]),
      'a map whose key is __proto__': Buffer.concat([Buffer.from([0x81, 0xa9]), b('__proto__'), Buffer.from([0x91]), ok]),
      'nothing but a list header': Buffer.from([0xdc, 0x00]),
    };
    for (const [what, bytes] of Object.entries(cases)) {
      const sm = kept();
      for (const size of [1, 5, bytes.length]) {
        const err = await sm.restore(inChunks(bytes, size)).then(
          () => new Error(`${what}: restored`),
          (e: unknown) => e,
        );
        expect(err, what).toBeInstanceOf(KvSnapshotCorruptError);
        expect(err, what).toMatchObject({ code: 'KV_SNAPSHOT_CORRUPT' });
      }
      expectKept(sm);
    }
  });

  it('stops reading at the first bad pair, and at a length longer than a string can be, before gathering what follows', async () => {
    for (const head of [
      Buffer.concat([list32(1000), pair(b('a'), b('1')), Buffer.from([0x92, 0xa1, 0x6b])]), // a string key
      Buffer.concat([list32(1), Buffer.from([0x92, 0xc6]), Buffer.from(new Uint32Array([0]).buffer)]).fill(0xff, 7), // a key of 2^32 - 1 bytes
    ]) {
      let pulled = 0;
      const stream = (async function* () {
        yield head;
        for (let i = 0; i < 1000; i++) {
          pulled++;
          yield Buffer.alloc(1024, 0xc4);
        }
      })();
      const sm = kept();
      await expect(sm.restore(stream)).rejects.toMatchObject({ code: 'KV_SNAPSHOT_CORRUPT' });
      expect(pulled).toBe(0);
      expectKept(sm);
    }
  });

  it('restores 4 million pairs of 5 bytes in a 64 MiB heap: the pairs are not all held at once', async () => {
    // 20 MB of [empty key, empty value] pairs: one key in the end. Unpacked whole, they were
    // 4 million arrays and 8 million buffers before the first went into the map.
    const script = `
      const { KvStateMachine } = await import(${JSON.stringify(join(process.cwd(), 'src/kv/kv-state-machine.ts'))});
      const n = 4_000_000;
      const bytes = Buffer.alloc(5 + 5 * n, Buffer.from([0x92, 0xc4, 0, 0xc4, 0]));
      bytes[0] = 0xdd;
      bytes.writeUInt32BE(n, 1);
      const sm = new KvStateMachine();
      await sm.restore((async function* () { for (let at = 0; at < bytes.length; at += 256 * 1024) yield bytes.subarray(at, at + 256 * 1024); })());
      console.log(sm.size);
    `;
    const r = await new Promise<{ status: number | null; signal: string | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, ['--max-old-space-size=64', '--import', 'tsx', '--input-type=module', '-e', script], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
    });
    expect({ status: r.status, signal: r.signal, out: r.stdout.trim(), fatal: /FATAL|heap/i.test(r.stderr) }, r.stderr.slice(-500)).toEqual({
      status: 0,
      signal: null,
      out: '1',
      fatal: false,
    });
  });
});
