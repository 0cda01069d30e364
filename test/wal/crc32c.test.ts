import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { addon } from '../../src/wal/addon.js';
import { crc32c } from '../../src/wal/crc32c.js';
import { seeded, testSeed } from '../seeded.js';

const reference = createRequire(import.meta.url)('crc-32/crc32c') as { buf(data: Uint8Array, seed?: number): number };

describe('CRC32C in pieces', () => {
  it('checksumming a stream piece by piece equals checksumming it whole (hardware and table paths)', () => {
    const seed = testSeed('CRC32C in pieces');
    const random = seeded(seed);
    const data = Uint8Array.from({ length: 100_003 }, () => Math.floor(random() * 256));
    const whole = reference.buf(data) >>> 0;
    for (const software of [false, true]) {
      let crc = 0;
      for (let at = 0; at < data.length;) {
        const n = 1 + Math.floor(random() * 9000);
        crc = addon().crc32c(data.subarray(at, at + n), software, crc);
        at += n;
      }
      expect(crc, `seed ${seed}`).toBe(whole);
    }
    expect(crc32c(data.subarray(0, 10), 0)).toBe(reference.buf(data.subarray(0, 10)) >>> 0);
    expect(crc32c(data.subarray(10), crc32c(data.subarray(0, 10)))).toBe(whole);
  });

  it('the hardware path agrees with the table at every length up to 3 KiB + 256 and every alignment', () => {
    // The hardware path runs three streams over lanes of 1,024, 256 and 64 bytes in turn:
    // every length crosses a different mix of them and a different tail.
    const seed = testSeed('CRC32C every length');
    const random = seeded(seed);
    const data = Uint8Array.from({ length: 3 * 1024 + 256 + 8 }, () => Math.floor(random() * 256));
    const native = addon();
    for (let at = 0; at < 8; at++) {
      for (let n = 0; at + n <= data.length; n++) {
        const piece = data.subarray(at, at + n);
        const hardware = native.crc32c(piece, false, 0);
        if (hardware !== native.crc32c(piece, true, 0)) expect.fail(`seed ${seed}: ${n} bytes at ${at}: the paths disagree`);
      }
    }
    expect(native.crc32c(data, false, 0)).toBe(reference.buf(data) >>> 0);
  });
});
