import { describe, expect, it } from 'vitest';
import { FrameDecoder, encodeFrames, frameChunks } from '../../src/transport/frame.js';
import { FrameTooLargeError } from '../../src/transport/errors.js';
import { backoffDelay } from '../../src/transport/backoff.js';
import { seeded, testSeed } from './helpers.js';
import { nextTurn } from '../setup/next-turn.js';
import { heapBytes } from '../heap.js';

function drain(d: FrameDecoder): Buffer[] {
  const out: Buffer[] = [];
  for (let f = d.next(); f !== undefined; f = d.next()) out.push(f);
  return out;
}

/** A frame built by hand, to check the encoders against. */
function framed(payload: Buffer): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt32BE(payload.length);
  return Buffer.concat([header, payload]);
}

describe('frameChunks', () => {
  it('lays out the frames of payloads in parts as encodeFrames does, long parts as they are', () => {
    const big = Buffer.alloc(100_000, 3);
    const bigger = Buffer.alloc(70_000, 4);
    const payloads = [[Buffer.from('ab'), big, Buffer.from('c')], [Buffer.from('hello')], [bigger], [], [Buffer.from('x'), Buffer.from('yz')]];
    const chunks = frameChunks(payloads);
    const expected = Buffer.concat(payloads.map((p) => framed(Buffer.concat(p))));
    expect(Buffer.concat(chunks).equals(expected)).toBe(true);
    expect(encodeFrames(payloads.map((p) => Buffer.concat(p))).equals(expected)).toBe(true);
    // Not copied: the long parts are the very buffers given, between gathered headers and short parts.
    expect(chunks[1]).toBe(big);
    expect(chunks[3]).toBe(bigger);
    expect(chunks).toHaveLength(5);
    const d = new FrameDecoder(1 << 20);
    for (const c of chunks) d.push(Buffer.from(c));
    expect(drain(d).map((f) => f.length)).toEqual([100_003, 5, 70_000, 0, 3]);
  });

  it('gathers short payloads into one buffer', () => {
    const payloads = [[Buffer.from('a')], [Buffer.from('bc'), Buffer.from('d')]];
    const chunks = frameChunks(payloads);
    expect(chunks).toHaveLength(1);
    expect(Buffer.from(chunks[0]!).equals(Buffer.concat([framed(Buffer.from('a')), framed(Buffer.from('bcd'))]))).toBe(true);
    expect(encodeFrames([])).toHaveLength(0);
  });
});

describe('FrameDecoder', () => {
  const payloads = [Buffer.from('a'), Buffer.alloc(0), Buffer.from('hello world'), Buffer.alloc(3000, 7)];
  const wire = encodeFrames(payloads);

  it('decodes frames fed one byte at a time', () => {
    const d = new FrameDecoder(4096);
    const out: Buffer[] = [];
    for (let i = 0; i < wire.length; i++) {
      d.push(wire.subarray(i, i + 1));
      out.push(...drain(d));
    }
    expect(out).toEqual(payloads);
    expect(d.pending).toBe(0);
  });

  it('decodes frames split at random points', async () => {
    const seed = testSeed('frame split');
    const random = seeded(seed);
    for (let round = 0; round < 50; round++) {
      await nextTurn();
      const d = new FrameDecoder(4096);
      const out: Buffer[] = [];
      let at = 0;
      while (at < wire.length) {
        const n = 1 + Math.floor(random() * 200);
        d.push(wire.subarray(at, at + n));
        at += n;
        out.push(...drain(d));
      }
      expect(out).toEqual(payloads);
    }
  });

  it('refuses an oversized frame from its header alone, and obeys a raised limit', () => {
    const d = new FrameDecoder(10);
    d.push(encodeFrames([Buffer.alloc(5), Buffer.alloc(11)]).subarray(0, 13));
    expect(drain.bind(null, d)).toThrow(FrameTooLargeError);
    const e = new FrameDecoder(10);
    e.push(encodeFrames([Buffer.alloc(5), Buffer.alloc(11)]));
    expect(e.next()).toEqual(Buffer.alloc(5));
    e.limit = 11;
    expect(e.next()).toEqual(Buffer.alloc(11));
  });
});

describe('FrameDecoder.head', () => {
  it('shows the first bytes of the frame under way, whatever the reads, without taking them', () => {
    const payload = Buffer.from(Array.from({ length: 3000 }, (_, i) => i % 256));
    for (const read of [1, 3, 7, 1500]) {
      const d = new FrameDecoder(1 << 20);
      const wire = framed(payload);
      expect(d.head(24)).toBeUndefined();
      for (let at = 0; at < wire.length - 1; at += read) {
        d.push(wire.subarray(at, Math.min(at + read, wire.length - 1)));
        expect(d.next()).toBeUndefined();
        const here = Math.min(at + read, wire.length - 1) - 4;
        if (here <= 0) expect(d.head(24)).toBeUndefined();
        else expect(d.head(24)!.equals(payload.subarray(0, Math.min(24, here)))).toBe(true);
      }
      d.push(wire.subarray(wire.length - 1));
      expect(d.next()!.equals(payload)).toBe(true);
      expect(d.head(24)).toBeUndefined();
    }
  });
});

describe('FrameDecoder memory', () => {
  it('holds a frame sent a byte per read in about its own size, not a buffer per byte', async () => {
    // Large enough that a buffer per byte (some 100 bytes of heap each) shows, small enough that
    // the loop does not hold the event loop long on a loaded machine.
    const bytes = 100_000;
    const frame = encodeFrames([Buffer.alloc(bytes, 7)]);
    const d = new FrameDecoder(1 << 20);
    await nextTurn();
    const before = heapBytes();
    // Each read of a socket is a Buffer of its own: a peer sending a byte per segment makes one per byte.
    // In one turn, so that nothing else the worker does between turns is measured with it.
    for (let i = 0; i < frame.length - 1; i++) d.push(Buffer.from(frame.subarray(i, i + 1)));
    const held = heapBytes() - before;
    expect(d.next()).toBeUndefined();
    expect(d.pending).toBe(bytes - 1);
    // Without copying short reads together: some 100 bytes of heap per byte read, 10 MB. The
    // measure swings by some 300 KB around the frame's 100 KB on a loaded machine.
    expect(held).toBeLessThan(20 * bytes);
    d.push(frame.subarray(frame.length - 1));
    // Compared as bytes: a deep equality walks 100,000 elements one by one.
    expect(d.next()!.equals(Buffer.alloc(bytes, 7))).toBe(true);
  });
});

describe('backoffDelay', () => {
  it('doubles from the initial delay to the cap, with jitter in the upper half', () => {
    const o = { initialMs: 50, maxMs: 2000 };
    expect([0, 1, 2, 3, 10].map((a) => backoffDelay(a, o, () => 0))).toEqual([25, 50, 100, 200, 1000]);
    expect([0, 1, 2, 3, 10].map((a) => backoffDelay(a, o, () => 0.999999))).toEqual([50, 100, 200, 400, 2000].map((x) => expect.closeTo(x, 2)));
    expect(backoffDelay(1e6, o, () => 0.5)).toBe(1500);
  });
});
