import { describe, expect, it } from 'vitest';
import { Payloads } from '../../src/cli/payloads.js';

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

describe('Payloads', () => {
  it('hands out records of the size asked for, all different, until they come round again', () => {
    const p = new Payloads(100);
    const seen = new Set<string>();
    for (let i = 0; i < p.count; i++) {
      const r = p.next();
      expect(r.length).toBe(100);
      seen.add(hex(r));
    }
    expect(seen.size).toBe(p.count);
    expect(p.count).toBeGreaterThanOrEqual(4096);
    expect(hex(new Payloads(100).next())).not.toBe(hex(p.next())); // each ring is its own random pool
  });

  it('repeats a record only after every other one has come', () => {
    const p = new Payloads(1024);
    const first = hex(p.next());
    for (let i = 1; i < p.count; i++) expect(hex(p.next())).not.toBe(first);
    expect(hex(p.next())).toBe(first);
  });

  it('is random, not a constant: its bytes do not compress', async () => {
    const { deflateSync } = await import('node:zlib');
    const p = new Payloads(100);
    const stream = Buffer.concat(Array.from({ length: 1000 }, () => p.next()));
    expect(deflateSync(stream).length).toBeGreaterThan(stream.length * 0.99);
  });

  it('bounds its pool for large records', () => {
    const p = new Payloads(1 << 20);
    expect(p.count).toBe(64);
  });
});
