import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { heapBytes } from '../heap.js';
import { EntryType, MessageType, type Entry, type Message } from '../../src/raft/types.js';
import { MalformedFrameError } from '../../src/transport/errors.js';
import {
  CHUNK_HEAD_BYTES,
  HANDSHAKE_MAX_BYTES,
  chunkHead,
  decodeFrame,
  encodeChunk,
  WIRE_VERSION,
  encodeHello,
  encodeMessage,
  encodeMessageParts,
  encodeRefuse,
  newPacker,
} from '../../src/transport/wire.js';
import { msg, seeded, testSeed } from './helpers.js';
import { nextTurn } from '../setup/next-turn.js';

describe('wire', () => {
  const p = newPacker();
  const valid = [
    encodeHello(p, 'cluster', 1, 2),
    encodeMessage(
      p,
      msg(1, 2, {
        type: MessageType.MsgApp,
        context: new Uint8Array([1]),
        rejectHintTerm: 4,
        entries: [{ index: 5, term: 2, type: EntryType.ConfChange, data: new Uint8Array([1, 2]) }],
      }),
    ),
    encodeChunk(p, 3, 0, 10, new Uint8Array(4), {
      message: msg(1, 2, { type: MessageType.MsgSnap }),
      meta: { index: 9, term: 2, conf: { voters: [1, 2], learners: [3] } },
    }),
  ].map((b) => Buffer.from(b));

  it('decodes what it encodes', () => {
    expect(decodeFrame(valid[0]!)).toEqual({ kind: 'hello', version: WIRE_VERSION, clusterId: 'cluster', from: 1, to: 2 });
    const m = decodeFrame(valid[1]!);
    expect(m.kind === 'message' && m.message.entries[0]).toEqual({ index: 5, term: 2, type: EntryType.ConfChange, data: Buffer.from([1, 2]) });
    const c = decodeFrame(valid[2]!);
    expect(c.kind === 'chunk' && c.header?.meta).toEqual({ index: 9, term: 2, conf: { voters: [1, 2], learners: [3] } });
    expect(decodeFrame(Buffer.from(encodeHello(p, 'cluster', 1, 2, '127.0.0.1:7101')))).toEqual({
      kind: 'hello',
      version: WIRE_VERSION,
      clusterId: 'cluster',
      from: 1,
      to: 2,
      address: '127.0.0.1:7101',
    });
  });

  it('reads an integer in any msgpack encoding of a whole non-negative number, and refuses any other', () => {
    const big = msg(1, 2, { term: 2 ** 40, index: 2 ** 53 - 1, commit: 2 ** 32 });
    const back = decodeFrame(Buffer.from(encodeMessage(p, big)));
    expect(back.kind === 'message' && [back.message.term, back.message.index, back.message.commit]).toEqual([2 ** 40, 2 ** 53 - 1, 2 ** 32]);
    // A ping's kind (6) written as uint64, int8, int64, float32 and float64; then as -1, 2^64-1 and 6.5.
    const kinds = ['cf0000000000000006', 'd006', 'd30000000000000006', 'ca40c00000', 'cb4018000000000000'];
    for (const k of kinds) expect(decodeFrame(Buffer.from(`91${k}`, 'hex')), k).toEqual({ kind: 'ping' });
    for (const k of ['ff', 'd0ff', 'cfffffffffffffffff', 'cb401a000000000000'])
      expect(() => decodeFrame(Buffer.from(`91${k}`, 'hex')), k).toThrow(/not a non-negative integer/);
  });

  it("names a chunk's stream and offset from its first bytes once enough are here, and nothing for any other frame", () => {
    const chunk = Buffer.from(encodeChunk(p, 70_000, 5_000_000_000, 6_000_000_000, new Uint8Array(100)));
    const named = [];
    for (let n = 0; n <= CHUNK_HEAD_BYTES; n++) named.push(chunkHead(chunk.subarray(0, n)));
    expect(named[CHUNK_HEAD_BYTES]).toEqual({ streamId: 70_000, offset: 5_000_000_000 });
    // Too short to tell, then told: never a wrong stream or offset.
    const first = named.findIndex((h) => h !== undefined);
    expect(named.slice(0, first).every((h) => h === undefined)).toBe(true);
    expect(named.slice(first).every((h) => h?.offset === 5_000_000_000)).toBe(true);
    const message = Buffer.from(encodeMessage(p, msg(1, 2, { type: MessageType.MsgApp, index: 2 })));
    expect(chunkHead(message.subarray(0, CHUNK_HEAD_BYTES))).toBeUndefined();
    expect(chunkHead(Buffer.from([0xc1, 0xff]))).toBeUndefined();
  });

  it('cuts a refusal to fit the handshake frames a dialer reads before the acceptor has proved itself', () => {
    const f = encodeRefuse(newPacker(), 'TRANSPORT_' + 'X'.repeat(200), 'why '.repeat(1000));
    expect(f.length).toBeLessThanOrEqual(HANDSHAKE_MAX_BYTES);
    expect(decodeFrame(Buffer.from(f))).toMatchObject({ kind: 'refuse', reason: expect.stringMatching(/^why why /) });
  });

  it('throws only MalformedFrameError on values whose own properties defeat String() and friends', () => {
    // [{ toString: 1 }], [{ valueOf: 1, toString: 1 }] and [[{ toString: 1 }]]: maps decode into objects
    for (const hex of ['9181a8746f537472696e6701', '9182a776616c75654f6601a8746f537472696e6701', '919181a8746f537472696e6701'])
      expect(() => decodeFrame(Buffer.from(hex, 'hex')), hex).toThrow(MalformedFrameError);
  });

  it('throws only MalformedFrameError on random and mutated bytes (seeded fuzz)', async () => {
    const seed = testSeed('wire fuzz');
    const random = seeded(seed);
    let rejected = 0;
    for (let i = 0; i < 5_000; i++) {
      if (i % 500 === 0) await nextTurn();
      let bytes: Buffer;
      if (i % 2 === 0) {
        bytes = Buffer.from(Array.from({ length: Math.floor(random() * 40) }, () => Math.floor(random() * 256)));
      } else {
        bytes = Buffer.from(valid[i % valid.length]!);
        const flips = 1 + Math.floor(random() * 3);
        for (let f = 0; f < flips; f++) bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
      }
      try {
        decodeFrame(bytes);
      } catch (e) {
        if (!(e instanceof MalformedFrameError)) throw new Error(`seed ${seed} case ${i}: ${bytes.toString('hex')} threw ${String(e)}`);
        rejected++;
      }
    }
    expect(rejected).toBeGreaterThan(2_500);
  });
});

describe('a message with many entries', () => {
  /** The wire format of a message, packed whole: what every encoding must produce. */
  const reference = (m: Message): Buffer =>
    Buffer.from(
      newPacker().pack([
        1,
        [
          m.type,
          m.to,
          m.from,
          m.term,
          m.logTerm,
          m.index,
          m.commit,
          m.reject,
          m.rejectHint,
          m.entries.map((e) => [e.index, e.term, e.type, e.data]),
          m.rejectHintTerm ?? null,
          m.context ?? null,
        ],
      ]),
    );

  it('encodes to the bytes of the message packed whole, its entries packed once for every follower', () => {
    const rand = seeded(testSeed('wire spliced entries'));
    const int = (n: number): number => Math.floor(rand() * n);
    const p = newPacker();
    let log: Entry[] = [];
    let mismatches = 0;
    for (let round = 0; round < 300; round++) {
      // A log that grows and is sometimes cut back and rewritten, as a leader's is.
      if (log.length > 0 && int(5) === 0) log = log.slice(0, int(log.length));
      for (let n = int(40); n > 0; n--) {
        const index = (log.at(-1)?.index ?? 0) + 1;
        log.push({ index, term: 1 + int(3) * 2 ** 33, type: int(2), data: Uint8Array.from({ length: int(300) }, () => int(256)) });
      }
      const from = int(Math.max(1, log.length));
      const entries = log.slice(from, from + int(60));
      // The same entries to two followers (another slice of the same objects), with their own fields.
      for (const to of [2, 3]) {
        const m = msg(1, to, {
          type: MessageType.MsgApp,
          term: 5,
          logTerm: int(10),
          index: from,
          commit: int(1000) * 2 ** 20,
          entries: to === 2 ? entries : entries.slice(),
          ...(int(2) === 0 ? { context: Uint8Array.of(int(256)) } : {}),
          ...(int(3) === 0 ? { rejectHintTerm: int(9) } : {}),
        });
        const bytes = Buffer.from(encodeMessage(p, m));
        if (!bytes.equals(reference(m))) mismatches++;
        const back = decodeFrame(bytes);
        if (back.kind !== 'message' || back.message.entries.length !== m.entries.length || back.message.to !== to) mismatches++;
      }
    }
    expect(mismatches).toBe(0);
  });

  it("keeps a message's parts intact while the packer packs others, the entries written as packed", () => {
    const p = newPacker();
    const kept: Array<{ m: Message; parts: Uint8Array[] }> = [];
    for (let i = 0; i < 40; i++) {
      // From 9 bytes to 90 KiB of entries: the packer outgrows its buffer and starts new ones meanwhile.
      const entries: Entry[] = Array.from({ length: 9 }, (_, k) => ({
        index: i * 9 + k + 1,
        term: 1,
        type: EntryType.Normal,
        data: new Uint8Array(1 + i * 256).fill(i),
      }));
      const m = msg(1, 2 + (i % 2), { type: MessageType.MsgApp, entries, commit: i });
      kept.push({ m, parts: encodeMessageParts(p, m) });
      p.pack(['filler', new Uint8Array(i * 100)]);
    }
    for (const { m, parts } of kept) {
      expect(parts.length).toBeGreaterThan(1); // spliced, not copied into one buffer
      expect(Buffer.concat(parts).equals(reference(m)), `commit ${m.commit}`).toBe(true);
    }
  });

  it("keeps nothing of a message's entries once its parts are dropped: a catch-up window's entries are not held until the next large message", async () => {
    const p = newPacker();
    let refs: Array<WeakRef<Uint8Array>> = [];
    (() => {
      const entries: Entry[] = Array.from({ length: 16 }, (_, i) => ({
        index: i + 1,
        term: 1,
        type: EntryType.Normal,
        data: new Uint8Array(256 * 1024).fill(i),
      }));
      refs = entries.map((e) => new WeakRef(e.data));
      encodeMessageParts(p, msg(1, 2, { type: MessageType.MsgApp, entries }));
    })();
    // A WeakRef's target is kept until the job that made it ends.
    await new Promise((r) => setTimeout(r, 0));
    heapBytes(); // two full collections
    expect(refs.filter((r) => r.deref() !== undefined).length).toBe(0);
    p.pack(['the packer is still in use']);
  });
});

describe('what a frame makes the node allocate', () => {
  /** The default frame limit: maxRecordBytes (4 MiB) + 2 MiB. */
  const FRAME = 6 * 1024 * 1024;
  /** A MsgApp from 1 to 2 whose entries array holds `n` of `entry`. */
  const msgApp = (n: number, entry: number[]): Buffer => {
    const head = Buffer.from([0x92, 0x01, 0x9c, MessageType.MsgApp, 2, 1, 1, 1, 1, 1, 0xc2, 0, 0xdd, 0, 0, 0, 0]);
    head.writeUInt32BE(n, head.length - 4);
    return Buffer.concat([head, Buffer.alloc(n * entry.length, Buffer.from(entry)), Buffer.from([0xc0, 0xc0])]);
  };
  /** Array32 of `n` `byte`s. */
  const arrayOf = (n: number, byte: number): Buffer =>
    Buffer.concat([Buffer.from([0xdd, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]), Buffer.alloc(n, byte)]);

  /** The code `payload` is refused with, decoded in a worker whose heap cannot hold 48 MB. */
  async function decodeInSmallHeap(payload: Buffer): Promise<string> {
    // Workers do not inherit the TypeScript loader: register it, then load the child.
    const boot = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(new URL('./decode-child.ts', import.meta.url).href)}); })`;
    const worker = new Worker(boot, { eval: true, workerData: { payload }, resourceLimits: { maxOldGenerationSizeMb: 48, maxYoungGenerationSizeMb: 8 } });
    try {
      return await new Promise<string>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', (e: Error & { code?: string }) => resolve(e.code ?? e.message));
        worker.once('exit', (code) => reject(new Error(`worker exited with ${code} before answering`)));
      });
    } finally {
      await worker.terminate();
    }
  }

  it('refuses frames of empty arrays, empty maps or nesting before building them', async () => {
    const frames = {
      'entries that are empty arrays': msgApp(FRAME - 32, [0x90]),
      'a tuple of empty maps': arrayOf(FRAME - 8, 0x80),
      'a tuple of empty arrays': arrayOf(FRAME - 8, 0x90),
      'arrays nested a frame deep': Buffer.alloc(FRAME, 0x91),
    };
    for (const [what, payload] of Object.entries(frames)) {
      expect(payload.length, what).toBeLessThanOrEqual(FRAME);
      // Without its own reader, the decoder built 6 million objects first: ERR_WORKER_OUT_OF_MEMORY.
      expect(await decodeInSmallHeap(payload), what).toBe('TRANSPORT_MALFORMED_FRAME');
    }
  });

  it('holds at most 16 times the bytes of a message of empty entries, and 25 of one-byte entries, once decoded', async () => {
    // The fewest bytes an entry can take: 6 (fixarray, three one-byte integers, an empty bin), or 7 with a byte of data.
    for (const [entry, most] of [
      [[0x94, 1, 1, 0, 0xc4, 0], 16],
      [[0x94, 1, 1, 0, 0xc4, 1, 7], 25],
    ] as const) {
      // A third of the frame limit: the ratio does not depend on the size, the time a collection takes does.
      const n = Math.floor(FRAME / 3 / entry.length);
      const payload = msgApp(n, [...entry]);
      await nextTurn();
      const before = heapBytes();
      await nextTurn();
      const f = decodeFrame(payload);
      await nextTurn();
      const held = heapBytes() - before;
      expect(f.kind === 'message' && f.message.entries.length).toBe(n);
      // An Entry and a view of its data per entry (the empty ones share one; some 11 and 23 times): without that, 27 and 23.
      expect(held / payload.length, `entries of ${entry.length} bytes`).toBeLessThanOrEqual(most);
    }
  });
});
