// Record payloads for benchmarks: random bytes, a different record each time. A benchmark that
// writes one buffer over and over (or a constant byte) measures a disk, or the host under a
// virtual disk, that compresses or deduplicates at the speed of that trick instead of the speed
// of the user's data: one virtual disk here wrote a constant pattern 4x faster than random bytes.
import { randomBytes } from 'node:crypto';

/** At most this many distinct records, and at most this many bytes of them, before they repeat. */
const MAX_RECORDS = 16_384;
const MAX_POOL_BYTES = 64 << 20;

/**
 * A ring of distinct random records of one size, views into one random pool: `next()` costs no
 * allocation, so the load generator adds nothing per record to the figure it measures. They
 * repeat after `count` records, many MiB apart for records of a KiB or more, and with their
 * framing (index, checksum) around them no two blocks on disk are alike even when they do.
 */
export class Payloads {
  private readonly views: Uint8Array[];
  private at = 0;

  constructor(readonly size: number) {
    const count = Math.max(1, Math.min(MAX_RECORDS, Math.floor(MAX_POOL_BYTES / Math.max(1, size))));
    const pool = randomBytes(count * size);
    this.views = Array.from({ length: count }, (_, i) => pool.subarray(i * size, (i + 1) * size));
  }

  /** The next record. */
  next(): Uint8Array {
    const v = this.views[this.at]!;
    this.at = this.at + 1 === this.views.length ? 0 : this.at + 1;
    return v;
  }

  /** How many distinct records there are before they repeat. */
  get count(): number {
    return this.views.length;
  }
}
