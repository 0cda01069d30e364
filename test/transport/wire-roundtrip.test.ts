// Every frame the encoder can produce must come back from the field-by-field reader as it went
// in, through the frame decoder whatever sizes the socket's reads have; and on bytes no encoder
// wrote, the reader must answer as msgpackr's unpack followed by the checks did.
import { describe, expect, it } from 'vitest';
import { EntryType, MAX_TERM, MessageType, type ConfState, type Entry, type Message } from '../../src/raft/types.js';
import { MalformedFrameError } from '../../src/transport/errors.js';
import { FrameDecoder, encodeFrames } from '../../src/transport/frame.js';
import {
  HANDSHAKE_MAX_BYTES,
  WIRE_VERSION,
  decodeFrame,
  encodeChallenge,
  encodeChunk,
  encodeHello,
  encodeMessage,
  encodePing,
  encodeProof,
  encodeRefuse,
  newPacker,
  type Frame,
  type HelloFrame,
} from '../../src/transport/wire.js';
import { decodeFrameUnpacked, newUnpacker } from './wire-unpacked.js';
import { seeded, testSeed } from './helpers.js';
import { nextTurn } from '../setup/next-turn.js';

type Rand = () => number;
type Packer = ReturnType<typeof newPacker>;

/** Numbers at the edges of every msgpack integer encoding, up to MAX_TERM, and any in between. */
function uint(r: Rand): number {
  const edges = [0, 1, 127, 128, 255, 256, 65_535, 65_536, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, MAX_TERM - 1, MAX_TERM];
  const pick = r();
  if (pick < 0.25) return edges[Math.floor(r() * edges.length)]!;
  if (pick < 0.5) return Math.floor(r() * 300);
  if (pick < 0.75) return Math.floor(r() * 2 ** 32);
  return Math.floor(r() * MAX_TERM);
}

function bytes(r: Rand, max = 300): Uint8Array {
  const lengths = [0, 1, 255, 256, 65_535, 65_536, 70_000];
  const n = r() < 0.05 ? lengths[Math.floor(r() * lengths.length)]! : Math.floor(r() * max);
  const b = new Uint8Array(n);
  // A long one is mostly one byte repeated: drawing each byte costs more than the test needs.
  if (n > 1000) b.fill(Math.floor(r() * 256));
  for (let i = 0; i < Math.min(n, 1000); i++) b[Math.floor(r() * n)] = Math.floor(r() * 256);
  return b;
}

const CHARS = ['a', 'Z', '0', ' ', ':', 'é', 'ß', 'Ω', 'ж', '中', '文', '€', '😀', '𝄞'];

/** Whole code points (no lone surrogates), lengths across fixstr, str8 and str16. */
function text(r: Rand, max: number): string {
  const n = Math.floor(r() * max);
  const ascii = r() < 0.5;
  let s = '';
  for (let i = 0; i < n; i++) s += CHARS[Math.floor(r() * (ascii ? 5 : CHARS.length))]!;
  return s;
}

function ids(r: Rand, min: number): number[] {
  return Array.from({ length: min + Math.floor(r() * 4) }, () => uint(r));
}

function entry(r: Rand): Entry {
  return { index: uint(r), term: uint(r), type: r() < 0.5 ? EntryType.Normal : EntryType.ConfChange, data: bytes(r) };
}

function message(r: Rand, type: MessageType): Message {
  const n = r() < 0.3 ? 0 : Math.floor(r() * 20);
  const m: Message = {
    type,
    to: uint(r),
    from: uint(r),
    term: uint(r),
    logTerm: uint(r),
    index: uint(r),
    commit: uint(r),
    reject: r() < 0.5,
    rejectHint: uint(r),
    entries: Array.from({ length: n }, () => entry(r)),
  };
  if (r() < 0.5) m.rejectHintTerm = uint(r);
  if (r() < 0.5) m.context = bytes(r, 40);
  return m;
}

function conf(r: Rand): ConfState {
  const c: ConfState = { voters: ids(r, 0), learners: ids(r, 0) };
  if (r() < 0.3) c.votersOutgoing = ids(r, 1);
  if (r() < 0.3) c.learnersNext = ids(r, 1);
  if (r() < 0.3) c.autoLeave = true;
  return c;
}

/** Every type a message frame carries (MsgSnap travels in a snapshot stream's first chunk). */
const TYPES = Object.values(MessageType).filter((t): t is MessageType => typeof t === 'number' && t !== MessageType.MsgSnap);

/** encodeHello writes WIRE_VERSION only; another version (which the handshake refuses) is packed alike by hand. */
function hello(p: Packer, f: HelloFrame): Uint8Array {
  if (f.version === WIRE_VERSION) return encodeHello(p, f.clusterId, f.from, f.to, f.address, f.nonce);
  const head = [0, f.version, f.clusterId, f.from, f.to];
  if (f.nonce !== undefined) return p.pack([...head, f.address ?? null, f.nonce]);
  return p.pack(f.address === undefined ? head : [...head, f.address]);
}

/** A frame and its encoding, drawn at random among every kind and field the senders write. */
function frame(r: Rand, p: Packer): { frame: Frame; bytes: Uint8Array } {
  const kind = Math.floor(r() * 8);
  if (kind === 0) {
    const f: HelloFrame = { kind: 'hello', version: r() < 0.8 ? WIRE_VERSION : uint(r), clusterId: text(r, 80), from: uint(r), to: uint(r) };
    if (r() < 0.5) f.address = text(r, 40);
    if (r() < 0.5) f.nonce = bytes(r, 40);
    return { frame: f, bytes: hello(p, f) };
  }
  if (kind === 1) {
    const f = { kind: 'challenge' as const, nonce: bytes(r, 40), proof: bytes(r, 40) };
    return { frame: f, bytes: encodeChallenge(p, f.nonce, f.proof) };
  }
  if (kind === 2) {
    const f = { kind: 'proof' as const, proof: bytes(r, 40) };
    return { frame: f, bytes: encodeProof(p, f.proof) };
  }
  if (kind === 3) {
    const pong = r() < 0.5;
    return { frame: { kind: pong ? 'pong' : 'ping' }, bytes: encodePing(p, pong) };
  }
  if (kind === 4) {
    // Within the lengths encodeRefuse keeps whole.
    const code = text(r, 20);
    const reason = text(r, 100);
    return { frame: { kind: 'refuse', code, reason }, bytes: encodeRefuse(p, code, reason) };
  }
  if (kind <= 6) {
    const m = message(r, TYPES[Math.floor(r() * TYPES.length)]!);
    return { frame: { kind: 'message', message: m }, bytes: encodeMessage(p, m) };
  }
  const data = bytes(r);
  const offset = r() < 0.5 ? 0 : uint(r);
  const total = offset + data.length + (r() < 0.5 ? 0 : Math.floor(r() * 1000));
  const streamId = uint(r);
  const f: Frame = { kind: 'chunk', streamId, offset, total, data };
  if (r() < 0.6) f.header = { message: message(r, MessageType.MsgSnap), meta: { index: uint(r), term: uint(r), conf: conf(r) } };
  return { frame: f, bytes: encodeChunk(p, streamId, offset, total, data, f.header) };
}

/** A frame as plain data, its bytes as hex, so that equality is field by field whatever the byte views. */
function plain(v: unknown): unknown {
  if (v instanceof Uint8Array) return `bytes:${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex')}`;
  if (Array.isArray(v)) return v.map(plain);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

describe('frames round-trip through the encoder, the frame decoder and the field reader', () => {
  it('decodes every random frame to what was encoded, whatever the sizes of the reads (seeded)', async () => {
    const seed = testSeed('wire round trip');
    const r = seeded(seed);
    const p = newPacker();
    const frames: Array<{ frame: Frame; bytes: Uint8Array }> = [];
    // Copies: the packer reuses its buffer for what it packs next.
    for (let i = 0; i < 2_000; i++) frames.push(((f) => ({ frame: f.frame, bytes: Buffer.from(f.bytes) }))(frame(r, p)));
    const stream = encodeFrames(frames.map((f) => f.bytes));
    const d = new FrameDecoder(1 << 24);
    const payloads: Buffer[] = [];
    // Reads of a byte, of a few, just under and over the copy threshold and its buffer, and long ones.
    const sizes = [1, 2, 3, 7, 100, 1023, 1024, 1025, 4096, 16_383, 16_384, 16_385, 70_000];
    for (let at = 0; at < stream.length;) {
      const n = Math.min(stream.length - at, sizes[Math.floor(r() * sizes.length)]!);
      // A socket hands out a fresh buffer per read.
      d.push(Buffer.from(stream.subarray(at, at + n)));
      at += n;
      for (let f = d.next(); f !== undefined; f = d.next()) payloads.push(f);
      if (payloads.length % 100 === 0) await nextTurn();
    }
    expect(d.pending).toBe(0);
    expect(payloads.length).toBe(frames.length);
    // Decoded only now: frames handed out earlier must still hold their bytes.
    let wrong = 0;
    for (let i = 0; i < frames.length; i++) {
      if (i % 200 === 0) await nextTurn();
      const want = plain(frames[i]!.frame);
      const got = plain(decodeFrame(payloads[i]!));
      if (JSON.stringify(got) !== JSON.stringify(want) && wrong++ === 0) expect(got, `seed ${seed} frame ${i}`).toEqual(want);
    }
    expect(wrong, `seed ${seed}`).toBe(0);
  });

  it('answers as msgpackr unpack and the former checks did on cut, lengthened and mutated frames (seeded)', async () => {
    const seed = testSeed('wire against unpack');
    const r = seeded(seed);
    const p = newPacker();
    const u = newUnpacker();
    const outcome = (f: () => Frame): string => {
      try {
        return JSON.stringify(plain(f()));
      } catch (e) {
        if (e instanceof MalformedFrameError) return 'refused';
        throw e;
      }
    };
    let accepted = 0;
    let refused = 0;
    const disagree: string[] = [];
    for (let i = 0; i < 6_000; i++) {
      if (i % 100 === 0) await nextTurn();
      const b = Buffer.from(frame(r, p).bytes);
      let m: Buffer;
      const how = Math.floor(r() * 4);
      if (how === 0) m = b.subarray(0, Math.floor(r() * b.length));
      else if (how === 1) m = Buffer.concat([b, Buffer.from([Math.floor(r() * 256)])]);
      else {
        m = Buffer.from(b);
        for (let k = 1 + Math.floor(r() * 2); k > 0; k--) m[Math.floor(r() * m.length)] = Math.floor(r() * 256);
      }
      const now = outcome(() => decodeFrame(m));
      const before = outcome(() => decodeFrameUnpacked(u, m));
      if (now === 'refused') refused++;
      else accepted++;
      if (now !== before && disagree.length < 5)
        disagree.push(`case ${i} ${m.toString('hex').slice(0, 160)}: now ${now.slice(0, 200)}, before ${before.slice(0, 200)}`);
    }
    expect(disagree, `seed ${seed}`).toEqual([]);
    expect(accepted).toBeGreaterThan(500);
    expect(refused).toBeGreaterThan(500);
  });
});

describe('a refusal', () => {
  it('fits what a dialer reads before the handshake whatever its text, cut at whole characters (seeded)', () => {
    const seed = testSeed('wire refusal size');
    const r = seeded(seed);
    const p = newPacker();
    for (let i = 0; i < 300; i++) {
      const code = text(r, 200);
      const reason = text(r, 2000);
      const b = encodeRefuse(p, code, reason);
      expect(b.length, `seed ${seed} case ${i}`).toBeLessThanOrEqual(HANDSHAKE_MAX_BYTES);
      const f = decodeFrame(Buffer.from(b));
      if (f.kind !== 'refuse') throw new Error(`seed ${seed} case ${i}: decoded a ${f.kind}`);
      expect(code.startsWith(f.code) && reason.startsWith(f.reason), `seed ${seed} case ${i}`).toBe(true);
    }
  });
});
