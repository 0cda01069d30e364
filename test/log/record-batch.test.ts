import { describe, expect, it } from 'vitest';
import { LogCorruptError } from '../../src/log/errors.js';
import { BatchReader, decodeBatch, encodeBatches, recordOrigin } from '../../src/log/record-batch.js';

const sameOrigin = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(b));

const session = (n: number): Uint8Array => Uint8Array.from({ length: 8 }, (_, i) => (n >> i) & 0xff);
const text = (b: Uint8Array): string => Buffer.from(b).toString();

function corruption(data: Uint8Array): LogCorruptError {
  let err: unknown;
  try {
    decodeBatch(data, 12);
  } catch (e) {
    err = e;
  }
  expect(err, `${[...data]}`).toBeInstanceOf(LogCorruptError);
  expect((err as LogCorruptError).code).toBe('LOG_CORRUPT');
  expect((err as LogCorruptError).index).toBe(12);
  return err as LogCorruptError;
}

describe('record batches', () => {
  it('round-trip the records of a turn, each a view of its own bytes', () => {
    const origin = recordOrigin(300, session(0xdead));
    const sizes = [0, 1, 127, 128, 300, 16_384];
    const seqs = sizes.map((_, i) => 2 ** 40 + i);
    const payloads = sizes.map((n, i) => Buffer.alloc(n, String.fromCharCode(97 + i)));
    const ends: number[] = [];
    const datas = encodeBatches(origin, seqs, payloads, 1 << 20, ends);
    expect(ends).toEqual([seqs.length]);
    const b = decodeBatch(Uint8Array.from(datas[0]!), 7)!; // a copy: nothing may leak across records
    expect(sameOrigin(b.origin, origin)).toBe(true);
    expect(b.firstSeq).toBe(2 ** 40);
    expect(b.payloads.map((p) => p.byteLength)).toEqual(sizes);
    expect(b.payloads.map(text)).toEqual(payloads.map(text));
  });

  it('hands out plain Uint8Array views whatever the entry came as, so that slice() copies on every node', () => {
    const origin = recordOrigin(2, session(2));
    const [data] = encodeBatches(origin, [1, 2], [Buffer.from('first'), Buffer.from('second')], 1 << 20, []);
    // As a follower gets it: a Buffer view into a larger read, at an offset.
    const read = Buffer.alloc(data!.length + 32, 0xee);
    read.set(data!, 16);
    for (const entry of [data!, read.subarray(16, 16 + data!.length)]) {
      const b = decodeBatch(entry, 3)!;
      expect(b.payloads.map(text)).toEqual(['first', 'second']);
      for (const p of b.payloads) {
        expect(Object.getPrototypeOf(p)).toBe(Uint8Array.prototype);
        const copy = p.slice();
        copy[0] = 0;
        expect(p[0]).not.toBe(0);
      }
      expect(Object.getPrototypeOf(b.origin)).toBe(Uint8Array.prototype);
    }
  });

  it('start a new batch past the size bound, for a record too large to share one, and at a gap in the seqs', () => {
    const origin = recordOrigin(1, session(1));
    const p = (n: number): Uint8Array => new Uint8Array(n);
    // Each 40-byte record takes 41 bytes with its length: three fit in 128, a fourth does not.
    const cases: Array<{ sizes: number[]; seqs?: number[]; ends: number[] }> = [
      { sizes: [40, 40, 40, 40, 40], ends: [3, 5] },
      { sizes: [40, 300, 40], ends: [1, 2, 3] }, // the large one alone
      { sizes: [300], ends: [1] },
      { sizes: [10, 10, 10, 10], seqs: [5, 6, 8, 9], ends: [2, 4] },
      { sizes: [40, 40, 40, 4, 1], ends: [4, 5] }, // exactly 128 bytes of records fit
    ];
    for (const c of cases) {
      const seqs = c.seqs ?? c.sizes.map((_, i) => 100 + i);
      const ends: number[] = [];
      const datas = encodeBatches(origin, seqs, c.sizes.map(p), 128, ends);
      expect(ends, JSON.stringify(c)).toEqual(c.ends);
      let from = 0;
      datas.forEach((d, j) => {
        const b = decodeBatch(d, 1)!;
        expect(b.firstSeq).toBe(seqs[from]);
        expect(b.payloads.map((x) => x.byteLength)).toEqual(c.sizes.slice(from, ends[j]));
        from = ends[j]!;
      });
    }
  });

  it('two nodes, or two sessions of one node, never share an origin', () => {
    const s = session(42);
    expect(sameOrigin(recordOrigin(1, s), recordOrigin(2, s))).toBe(false); // same session bits, other node
    expect(sameOrigin(recordOrigin(1, s), recordOrigin(1, session(43)))).toBe(false);
    expect(sameOrigin(recordOrigin(1, s), recordOrigin(1, session(42)))).toBe(true);
    // Node 1 and node 128 differ in the varint's length as well as its bytes.
    const [a] = encodeBatches(recordOrigin(1, s), [5], [Uint8Array.of(9)], 100, []);
    const [b] = encodeBatches(recordOrigin(128, s), [5], [Uint8Array.of(9)], 100, []);
    expect(sameOrigin(decodeBatch(a!, 1)!.origin, decodeBatch(b!, 1)!.origin)).toBe(false);
    const r = new BatchReader();
    r.open(b!, 1);
    expect(r.hasOrigin(recordOrigin(128, s))).toBe(true);
    expect(r.hasOrigin(recordOrigin(1, s))).toBe(false);
  });

  it('an empty entry carries no record; anything else that does not decode is corruption', () => {
    expect(decodeBatch(new Uint8Array(0), 1)).toBeNull();
    const head = [3, 1, 0, 0, 0, 0, 0, 0, 0, 0]; // version, node 1, session
    const bad: Array<[number[], RegExp]> = [
      [[1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 5, 1], /version 1/], // a format no release reads any more
      [[2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0x80], /record tag cut short/], // the single-record format, its seq cut short
      [[9], /version 9/],
      [[3], /node id/],
      [[3, 0, 1, 2, 3, 4, 5, 6, 7, 8, 1, 1, 0], /node id/], // node 0
      [[3, 1, 1, 2, 3], /cut short/], // session cut short
      [[...head, 0x80], /cut short/], // first seq cut short
      [[...head, 5], /cut short/], // no count
      [[...head, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 1, 0], /cut short/], // seq beyond 2^53
      [[...head, 0, 1, 0], /bad seqs/], // seq 0
      [[...head, 5, 0], /bad seqs/], // no record
      [[...head, 5, 2, 1, 7], /record 1 of 2 cut short/],
      [[...head, 5, 1, 3, 7, 7], /record 0 of 1 cut short/],
      [[...head, 5, 0xff, 0xff, 0xff, 0x7f, 0], /record 1 of 268435455 cut short/], // a huge count bounded by the bytes
      [[...head, 5, 1, 1, 7, 8], /1 bytes after the last record/],
    ];
    for (const [data, why] of bad) expect(corruption(Uint8Array.from(data)).message).toMatch(why);
  });

  it("reads the single-record entries written before batches: one record, never this session's", () => {
    const origin = recordOrigin(7, session(5));
    const single = Uint8Array.of(2, ...origin.subarray(1), 0x81, 0x01, 104, 105); // version 2, the same origin, seq 129, "hi"
    const r = new BatchReader();
    expect(r.open(single, 3)).toBe(true);
    expect([r.firstSeq, r.count]).toEqual([129, 1]);
    expect(text(r.next())).toBe('hi');
    expect(r.hasOrigin(origin)).toBe(false); // its version byte differs: no live session made it
  });

  it('opens a damaged batch without handing out any of its records', () => {
    const [data] = encodeBatches(recordOrigin(1, session(1)), [1, 2, 3], [Uint8Array.of(1), Uint8Array.of(2), Uint8Array.of(3)], 100, []);
    const cut = data!.subarray(0, data!.byteLength - 1);
    const r = new BatchReader();
    expect(() => r.open(cut, 4)).toThrow(/record 2 of 3 cut short/);
  });
});
