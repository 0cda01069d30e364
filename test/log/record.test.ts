import { describe, expect, it } from 'vitest';
import { decodeRecord, encodeRecords } from '../../src/log/record.js';

describe('record tags', () => {
  it('round-trip a batch, each record a view of its own bytes', () => {
    const seqs = [1, 127, 128, 16_384, 2 ** 40, Number.MAX_SAFE_INTEGER];
    const payloads = seqs.map((s, i) => Buffer.from(`payload ${i} ${s}`));
    const encoded = encodeRecords(0xdeadbeef, seqs, payloads);
    expect(encoded).toHaveLength(seqs.length);
    encoded.forEach((e, i) => {
      const r = decodeRecord(Uint8Array.from(e)); // a copy: nothing may leak across record boundaries
      expect(r?.tag).toEqual({ session: 0xdeadbeef, seq: seqs[i] });
      expect(Buffer.from(r!.payload).toString()).toBe(`payload ${i} ${seqs[i]}`);
    });
  });

  it('takes entries that carry no record for what they are', () => {
    expect(decodeRecord(new Uint8Array(0))).toBeNull();
    expect(decodeRecord(Uint8Array.of(2, 0, 0, 0, 0, 1))).toBeNull(); // another kind
    expect(decodeRecord(Uint8Array.of(1, 0, 0, 0, 0, 0x80))).toBeNull(); // a varint cut short
  });
});
