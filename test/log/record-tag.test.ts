import { describe, expect, it } from 'vitest';
import { LogCorruptError } from '../../src/log/errors.js';
import { decodeRecord, encodeRecords, recordOrigin, sameOrigin } from '../../src/log/record-tag.js';

const session = (n: number): Uint8Array => Uint8Array.from({ length: 8 }, (_, i) => (n >> i) & 0xff);

describe('record tags', () => {
  it('round-trip a batch, each record a view of its own bytes', () => {
    const origin = recordOrigin(300, session(0xdead));
    const seqs = [1, 127, 128, 16_384, 2 ** 40, Number.MAX_SAFE_INTEGER];
    const payloads = seqs.map((s, i) => Buffer.from(`payload ${i} ${s}`));
    const encoded = encodeRecords(origin, seqs, payloads);
    expect(encoded).toHaveLength(seqs.length);
    encoded.forEach((e, i) => {
      const r = decodeRecord(Uint8Array.from(e), 7); // a copy: nothing may leak across record boundaries
      expect(sameOrigin(r!.tag.origin, origin)).toBe(true);
      expect(r!.tag.seq).toBe(seqs[i]);
      expect(Buffer.from(r!.payload).toString()).toBe(`payload ${i} ${seqs[i]}`);
    });
  });

  it('two nodes, or two sessions of one node, never share an origin', () => {
    const s = session(42);
    expect(sameOrigin(recordOrigin(1, s), recordOrigin(2, s))).toBe(false); // same session bits, other node
    expect(sameOrigin(recordOrigin(1, s), recordOrigin(1, session(43)))).toBe(false);
    expect(sameOrigin(recordOrigin(1, s), recordOrigin(1, session(42)))).toBe(true);
    // Node 1 and node 128 differ in the varint's length as well as its bytes.
    const [a] = encodeRecords(recordOrigin(1, s), [5], [Uint8Array.of(9)]);
    const [b] = encodeRecords(recordOrigin(128, s), [5], [Uint8Array.of(9)]);
    expect(sameOrigin(decodeRecord(a!, 1)!.tag.origin, decodeRecord(b!, 1)!.tag.origin)).toBe(false);
  });

  it('an empty entry carries no record; anything else that does not decode is corruption', () => {
    expect(decodeRecord(new Uint8Array(0), 1)).toBeNull();
    const bad: Array<[Uint8Array, RegExp]> = [
      [Uint8Array.of(1, 0, 0, 0, 0, 1), /version 1/], // the earlier tag format
      [Uint8Array.of(9), /version 9/],
      [Uint8Array.of(2), /node id/],
      [Uint8Array.of(2, 0, 1, 2, 3, 4, 5, 6, 7, 8, 1), /node id/], // node 0
      [Uint8Array.of(2, 1, 1, 2, 3), /cut short/], // session cut short
      [Uint8Array.of(2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0x80), /cut short/], // seq varint cut short
      [Uint8Array.of(2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1), /cut short/], // beyond 2^53
    ];
    for (const [data, why] of bad) {
      let err: unknown;
      try {
        decodeRecord(data, 12);
      } catch (e) {
        err = e;
      }
      expect(err, `${[...data]}`).toBeInstanceOf(LogCorruptError);
      expect((err as LogCorruptError).code).toBe('LOG_CORRUPT');
      expect((err as LogCorruptError).index).toBe(12);
      expect((err as Error).message).toMatch(why);
    }
  });
});
