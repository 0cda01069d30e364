import { describe, expect, it } from 'vitest';
import { storeValue, valueBytes } from '../../src/kv/stored-value.js';

const every = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

describe('stored values', () => {
  it('gives back every byte value as stored, at every size around the boundary', () => {
    for (const n of [0, 1, 255, 256, 4095, 4096, 4097, 100_000]) {
      const bytes = Buffer.alloc(n);
      for (let i = 0; i < n; i++) bytes[i] = every[(i * 7) % 256]!;
      expect(valueBytes(storeValue(bytes)).equals(bytes), `${n} bytes`).toBe(true);
      // A plain Uint8Array too, at an offset into its memory, as a log entry's record is.
      const plain = new Uint8Array(n + 3).subarray(3);
      plain.set(bytes);
      expect(valueBytes(storeValue(plain)).equals(bytes), `${n} bytes in a Uint8Array`).toBe(true);
    }
  });

  it('keeps no view of the buffer it was given, which may be a whole network read or log batch', () => {
    const batch = Buffer.alloc(1 << 20, 1);
    const small = storeValue(batch.subarray(100, 200));
    const large = storeValue(batch.subarray(1000, 1000 + 64 * 1024));
    batch.fill(2); // the log reuses its buffers: a kept view would change with them
    expect(valueBytes(small).equals(Buffer.alloc(100, 1))).toBe(true);
    expect(valueBytes(large).equals(Buffer.alloc(64 * 1024, 1))).toBe(true);
  });

  it('holds a small value in no Buffer, so that it cannot keep a shared 8 KiB pool alive', () => {
    const v = storeValue(Buffer.from('a value of the usual size'));
    expect(typeof v).toBe('string');
    // A Buffer.from copy of the same bytes would be a view into the pool.
    expect(Buffer.from(Buffer.from('x')).buffer.byteLength).toBe(Buffer.poolSize);
  });

  it('holds a large value in memory of its own, not shared with anything', () => {
    const v = storeValue(Buffer.alloc(4096, 3));
    expect(Buffer.isBuffer(v)).toBe(true);
    const b = v as Buffer;
    expect(b.byteOffset).toBe(0);
    expect(b.buffer.byteLength).toBe(b.length);
  });
});
