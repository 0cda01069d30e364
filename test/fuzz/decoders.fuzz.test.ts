// Seeded property tests of every decoder that reads a peer's or a client's
// bytes: whatever arrives either decodes to something well formed or is refused
// with a coded error, never anything else thrown, and never an allocation past
// the configured limits. Inputs are valid encodings mutated at random (bytes
// flipped, cut, spliced, msgpack values of the wrong shape swapped in), so the
// decoders get deep before the damage. TEST_SEED replays a printed seed.
import { EventEmitter } from 'node:events';
import type net from 'node:net';
import { describe, expect, it } from 'vitest';
import { Packr, unpack } from 'msgpackr';
import { EntryType, MessageType, type Message } from '../../src/raft/types.js';
import { validateMessage } from '../../src/raft/validate.js';
import { FrameTooLargeError, TransportError } from '../../src/transport/errors.js';
import { FrameDecoder, encodeFrames } from '../../src/transport/frame.js';
import { inMemorySnapshots } from '../../src/transport/snapshot-streams.js';
import { Inbound } from '../../src/transport/inbound.js';
import { PendingReleases } from '../../src/transport/pending-releases.js';
import { WIRE_VERSION, decodeFrame, encodeChunk, encodeHello, encodeMessage, encodeProof, newPacker, type Frame } from '../../src/transport/wire.js';
import { ARG_OVERHEAD, RespParser, RespProtocolError, type RespLimits } from '../../src/kv/resp.js';
import { seeded, testSeed } from '../seeded.js';
import { nextTurn } from '../setup/next-turn.js';

type Random = () => number;
const int = (r: Random, n: number): number => Math.floor(r() * n);

function message(over: Partial<Message> = {}): Message {
  return { type: MessageType.MsgApp, to: 2, from: 1, term: 3, logTerm: 2, index: 7, commit: 5, reject: false, rejectHint: 0, entries: [], ...over };
}

/** A msgpack value of any shape, some of them the right shape in the wrong place. */
function anyValue(r: Random, depth = 0): unknown {
  switch (int(r, depth > 2 ? 8 : 10)) {
    case 0:
      return int(r, 10);
    case 1:
      return r() < 0.5 ? -int(r, 1 << 20) : 2 ** (31 + int(r, 40));
    case 2:
      return r() < 0.5 ? r() * 100 : [NaN, Infinity, -0][int(r, 3)];
    case 3:
      return 'x'.repeat(int(r, 20));
    case 4:
      return Buffer.alloc(int(r, 20), int(r, 256));
    case 5:
      return null;
    case 6:
      return r() < 0.5;
    case 7:
      return undefined;
    case 8:
      return Array.from({ length: int(r, 8) }, () => anyValue(r, depth + 1));
    default:
      return { a: anyValue(r, depth + 1) };
  }
}

/** Mutates a valid encoding: flips, cuts, splices, or re-packs one element of its tuple as something else. */
function mutate(r: Random, valid: Buffer, packer: Packr): Buffer {
  const b = Buffer.from(valid);
  switch (int(r, 4)) {
    case 0:
      for (let k = 1 + int(r, 3); k > 0; k--) b[int(r, b.length)] = int(r, 256);
      return b;
    case 1:
      return b.subarray(0, int(r, b.length));
    case 2:
      return Buffer.concat([b.subarray(0, int(r, b.length)), Buffer.from(Array.from({ length: int(r, 12) }, () => int(r, 256))), b.subarray(int(r, b.length))]);
    default: {
      const tuple = unpack(valid) as unknown[];
      const at = int(r, tuple.length);
      const inner = tuple[at];
      if (Array.isArray(inner) && inner.length > 0 && r() < 0.6) inner[int(r, inner.length)] = anyValue(r);
      else tuple[at] = anyValue(r);
      return Buffer.from(packer.pack(tuple));
    }
  }
}

const isIndex = (n: unknown): boolean => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;

/** What a decoded frame must be: every field of the type it claims. */
function assertWellFormed(f: Frame): void {
  switch (f.kind) {
    case 'hello':
      expect([f.version, f.from, f.to].every(isIndex)).toBe(true);
      expect(typeof f.clusterId).toBe('string');
      return;
    case 'message':
      // The wire checks the shape; what a message means the core judges (validate.ts) before it changes
      // anything: the two together refuse with RAFT_INVALID_MESSAGE and nothing else.
      try {
        validateMessage(f.message, f.message.to);
      } catch (e) {
        expect((e as { code?: string }).code).toBe('RAFT_INVALID_MESSAGE');
      }
      return;
    case 'chunk':
      expect([f.streamId, f.offset, f.total].every(isIndex)).toBe(true);
      expect(f.offset + f.data.length).toBeLessThanOrEqual(f.total);
      if (f.header !== undefined) {
        expect(f.header.message.type).toBe(MessageType.MsgSnap);
        expect([f.header.meta.index, f.header.meta.term].every(isIndex)).toBe(true);
      }
      return;
    default:
      return;
  }
}

describe('peer wire decoder (seeded fuzz)', () => {
  it('decodes mutated frames to well-formed frames or refuses them with a coded TransportError', async () => {
    const seed = testSeed('fuzz: wire decodeFrame');
    const r = seeded(seed);
    const p = newPacker();
    const valid = [
      encodeHello(p, 'cluster', 1, 2, '127.0.0.1:7000', new Uint8Array(16)),
      encodeMessage(p, message({ entries: [{ index: 8, term: 3, type: EntryType.Normal, data: new Uint8Array([1, 2, 3]) }], context: new Uint8Array([9]) })),
      encodeMessage(p, message({ type: MessageType.MsgVote, entries: [] })),
      encodeChunk(p, 4, 0, 10, new Uint8Array(6), {
        message: message({ type: MessageType.MsgSnap }),
        meta: { index: 9, term: 2, conf: { voters: [1, 2], learners: [] } },
      }),
      encodeChunk(p, 4, 6, 10, new Uint8Array(4)),
      encodeProof(p, new Uint8Array(32)),
    ].map((b) => Buffer.from(b));
    const refused = new Set<string>();
    let decoded = 0;
    for (let i = 0; i < 6000; i++) {
      if (i % 500 === 0) await nextTurn();
      const bytes = mutate(r, valid[i % valid.length]!, p);
      let f: Frame;
      try {
        f = decodeFrame(bytes);
      } catch (e) {
        if (!(e instanceof TransportError)) throw new Error(`seed ${seed} case ${i}: ${bytes.toString('hex')} threw ${String(e)}`);
        refused.add(e.code);
        continue;
      }
      try {
        assertWellFormed(f);
      } catch (e) {
        throw new Error(`seed ${seed} case ${i}: ${bytes.toString('hex')} decoded to an ill-formed ${f.kind} frame: ${String(e)}`);
      }
      decoded++;
    }
    // Both outcomes happen: the mutations neither all break nor all miss the decoder.
    expect(decoded).toBeGreaterThan(300);
    expect(refused.size).toBeGreaterThan(0);
  });

  it('the frame decoder buffers no more than a frame under its limit, whatever lengths the headers claim', async () => {
    const seed = testSeed('fuzz: FrameDecoder');
    const r = seeded(seed);
    const limit = 256;
    let tooLarge = 0;
    for (let round = 0; round < 400; round++) {
      if (round % 100 === 0) await nextTurn();
      const d = new FrameDecoder(limit);
      const payloads = Array.from({ length: 1 + int(r, 6) }, () => Buffer.alloc(int(r, limit + 1), int(r, 256)));
      let stream = encodeFrames(payloads);
      // Sometimes a header lies: it claims more than the limit, or more than follows.
      if (r() < 0.5) stream.writeUInt32BE(r() < 0.5 ? limit + 1 + int(r, 2 ** 31) : int(r, limit + 1), int(r, Math.max(1, stream.length - 4)));
      if (r() < 0.3) stream = stream.subarray(0, int(r, stream.length));
      const got: Buffer[] = [];
      try {
        for (let at = 0; at < stream.length;) {
          const n = 1 + int(r, 64);
          d.push(stream.subarray(at, at + n));
          at += n;
          for (let f = d.next(); f !== undefined; f = d.next()) {
            expect(f.length).toBeLessThanOrEqual(limit);
            got.push(f);
          }
          // Never more than one frame under the limit (with its header) plus the slice just pushed.
          expect(d.pending).toBeLessThanOrEqual(limit + 4 + 64);
        }
      } catch (e) {
        if (!(e instanceof FrameTooLargeError)) throw new Error(`seed ${seed} round ${round}: ${String(e)}`);
        expect(e.code).toBe('TRANSPORT_FRAME_TOO_LARGE');
        tooLarge++;
      }
    }
    expect(tooLarge).toBeGreaterThan(0);
  });
});

/** Just enough of a socket for an Inbound: it records what is written and whether it was closed. */
class FakeSocket extends EventEmitter {
  remoteAddress = '127.0.0.1';
  remotePort = 1;
  ended = false;
  setNoDelay(): this {
    return this;
  }
  write(): boolean {
    return true;
  }
  end(): this {
    this.ended = true;
    return this;
  }
  // The connection pauses its socket while a chunk is spooled; a fake one has nothing to hold back.
  pause(): this {
    return this;
  }
  resume(): this {
    return this;
  }
  destroy(): this {
    this.ended = true;
    this.emit('close');
    return this;
  }
}

describe('snapshot chunk reassembly (seeded fuzz)', () => {
  it('delivers only whole snapshots within the size limit, or refuses the stream with a coded error', async () => {
    const seed = testSeed('fuzz: inbound snapshot reassembly');
    const r = seeded(seed);
    const p = newPacker();
    const maxSnapshotBytes = 64;
    let delivered = 0;
    const refusals = new Set<string>();
    for (let round = 0; round < 600; round++) {
      const socket = new FakeSocket();
      const got: Message[] = [];
      let refusedWith: TransportError | undefined;
      const inbound = new Inbound(socket as unknown as net.Socket, {
        self: 2,
        clusterId: 'c',
        maxFrameBytes: 1024,
        maxSnapshotBytes,
        handshakeTimeoutMs: 60_000,
        idleTimeoutMs: 60_000,
        secrets: () => [],
        logger: { warn: () => {}, info: () => {}, error: () => {}, debug: () => {}, child: () => ({}) } as never,
        refusals: { warn: () => {} },
        packer: p,
        deliver: (m) => got.push(m),
        refused: (e) => {
          refusedWith = e;
        },
        learned: () => {},
        authenticated: () => {},
        snapshots: inMemorySnapshots,
        isMember: () => true,
        releases: new PendingReleases({ warn: () => {} }),
        abandonedStores: new Set(),
      });
      // An honest handshake, then a stream of chunks: a well-formed one, mutated now and then.
      const frames: Uint8Array[] = [encodeHello(p, 'c', 1, 2), encodeProof(p, new Uint8Array(0))];
      for (let s = 0; s < 1 + int(r, 3); s++) {
        const total = int(r, 100);
        const head = { message: message({ type: MessageType.MsgSnap, from: 1, to: 2 }), meta: { index: 9, term: 2, conf: { voters: [1, 2], learners: [] } } };
        let off = 0;
        do {
          const n = Math.min(total - off, int(r, 40));
          const chunk = Buffer.from(encodeChunk(p, s + 1, off, total, new Uint8Array(n).fill(s + 1), off === 0 ? head : undefined));
          frames.push(r() < 0.15 ? mutate(r, chunk, p) : chunk);
          off += n;
        } while (off < total && frames.length < 40);
      }
      const bytes = encodeFrames(frames);
      try {
        for (let at = 0; at < bytes.length;) {
          const n = 1 + int(r, 50);
          socket.emit('data', bytes.subarray(at, at + n));
          at += n;
        }
      } catch (e) {
        inbound.destroy();
        throw new Error(`seed ${seed} round ${round}: the inbound connection threw ${String(e)}`);
      }
      // Chunks are spooled asynchronously (the socket pauses meanwhile): let the spool finish.
      for (let k = 0; k < 20 && !socket.ended; k++) await nextTurn();
      inbound.destroy();
      for (const m of got) {
        expect(m.type).toBe(MessageType.MsgSnap);
        expect(m.snapshot).toBeDefined();
        expect(m.snapshot!.data.length).toBeLessThanOrEqual(maxSnapshotBytes);
        delivered++;
      }
      if (refusedWith !== undefined) {
        expect(typeof refusedWith.code).toBe('string');
        refusals.add(refusedWith.code);
      }
    }
    expect(delivered).toBeGreaterThan(50);
    expect(refusals.size).toBeGreaterThan(1);
  });
});

describe('RESP parser (seeded fuzz)', () => {
  it('turns mutated command streams into commands within the limits or a coded RespProtocolError', async () => {
    const seed = testSeed('fuzz: RESP parser');
    const r = seeded(seed);
    // Each argument counts ARG_OVERHEAD (128) more than its length, a command 192: the SET below counts 585.
    const limits: RespLimits = { maxArgs: 6, maxBulkBytes: 48, maxCommandBytes: 600, maxInlineBytes: 80 };
    const valid = Buffer.from('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n*1\r\n$4\r\nPING\r\nGET key\r\n*2\r\n$3\r\nGET\r\n$3\r\nabc\r\n');
    const codes = new Set<string>();
    let commands = 0;
    for (let round = 0; round < 3000; round++) {
      if (round % 500 === 0) await nextTurn();
      const input = Buffer.from(valid);
      // Damage: flipped bytes, or a header rewritten to claim huge or negative lengths and counts.
      for (let k = int(r, 4); k > 0; k--) input[int(r, input.length)] = [42, 36, 13, 10, 45, 48 + int(r, 10), int(r, 256)][int(r, 7)]!;
      const fed = r() < 0.3 ? Buffer.concat([input.subarray(0, int(r, input.length)), Buffer.from(`*${int(r, 2 ** 31)}\r\n$${int(r, 2 ** 40)}\r\n`)]) : input;
      const parser = new RespParser(limits);
      try {
        for (let at = 0; at < fed.length;) {
          const n = 1 + int(r, 30);
          for (const cmd of parser.push(fed.subarray(at, at + n))) {
            commands++;
            expect(cmd.length).toBeGreaterThan(0);
            expect(cmd.length).toBeLessThanOrEqual(limits.maxArgs);
            let bytes = 0;
            for (const a of cmd) bytes += a.length + ARG_OVERHEAD;
            expect(bytes).toBeLessThanOrEqual(Math.max(limits.maxCommandBytes, limits.maxInlineBytes + ARG_OVERHEAD * limits.maxArgs));
          }
          at += n;
          // Never holding more than a command under the limits, an inline line, and the slice just pushed.
          expect(parser.retainedBytes).toBeLessThanOrEqual(limits.maxCommandBytes + limits.maxInlineBytes + 64 + 30);
        }
      } catch (e) {
        if (!(e instanceof RespProtocolError)) throw new Error(`seed ${seed} round ${round}: ${fed.toString('latin1')} threw ${String(e)}`);
        codes.add(e.code);
      }
    }
    expect(commands).toBeGreaterThan(1000);
    expect(codes.size).toBeGreaterThan(1);
  });
});

// The wire version the fuzzed hellos speak must be the one the decoder expects, or every hello is refused.
it('the fuzzed handshake speaks the current wire version', () => {
  expect(decodeFrame(Buffer.from(encodeHello(newPacker(), 'c', 1, 2)))).toMatchObject({ kind: 'hello', version: WIRE_VERSION });
});
