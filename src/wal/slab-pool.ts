// Where the WAL packs records before the writer thread writes them: slices of
// shared slabs, since one ArrayBuffer per append costs more than the packing
// itself for small batches. Slices are handed out zeroed (padding and reserved
// header bytes rely on that). Slabs are
// reused once every job packed into them is durable: a fresh ArrayBuffer per
// slab counts as external memory to V8, and at disk speed (hundreds of MB/s)
// that growth alone triggers a full mark-compact every few hundred
// milliseconds, each a pause of the event loop.

/** Bytes per slab: a write larger than a quarter of it gets a buffer of its own. */
export const SLAB_BYTES = 1024 * 1024;

/** Free slabs kept for reuse (beyond them, freed slabs go to the garbage collector). */
const MAX_FREE = 8;

interface Slab {
  u8: Uint8Array;
  /** The last job packed into it; Infinity while a job being collected still uses it. */
  job: number;
  /** Listed in `unsealed`: used by the job being collected. */
  unsealed: boolean;
  /** Holds bytes a previous user wrote: slices are zeroed before they are handed out. */
  dirty: boolean;
}

export class SlabPool {
  #current: Slab | null = null;
  #used = 0;
  /** Slabs no longer packed into, oldest first, waiting for their last job to be durable. */
  readonly #retired: Slab[] = [];
  #retiredHead = 0;
  readonly #free: Slab[] = [];
  /** Slabs used since the last seal(): the job being collected. */
  readonly #unsealed: Slab[] = [];

  /** A zeroed slice of `n` bytes, part of the job being collected until seal(). */
  allocate(n: number): Uint8Array {
    if (n > SLAB_BYTES / 4) return new Uint8Array(new ArrayBuffer(n));
    let s = this.#current;
    if (s === null || this.#used + n > SLAB_BYTES) {
      if (s !== null) this.#retired.push(s);
      s = this.#free.pop() ?? { u8: new Uint8Array(new ArrayBuffer(SLAB_BYTES)), job: 0, unsealed: false, dirty: false };
      this.#current = s;
      this.#used = 0;
    }
    if (!s.unsealed) {
      s.unsealed = true;
      s.job = Infinity;
      this.#unsealed.push(s);
    }
    const out = s.u8.subarray(this.#used, this.#used + n);
    if (s.dirty) out.fill(0);
    this.#used += n;
    return out;
  }

  /** The job being collected was submitted as `id`: its slabs are free once `id` is durable. */
  seal(id: number): void {
    for (const s of this.#unsealed) {
      s.job = id;
      s.unsealed = false;
    }
    this.#unsealed.length = 0;
  }

  /** Every job up to `lastId` is durable: the native writer no longer reads their slabs. */
  done(lastId: number): void {
    const r = this.#retired;
    while (this.#retiredHead < r.length && r[this.#retiredHead]!.job <= lastId) {
      const s = r[this.#retiredHead]!;
      r[this.#retiredHead++] = undefined as unknown as Slab;
      if (this.#free.length < MAX_FREE) {
        s.dirty = true;
        this.#free.push(s);
      }
    }
    if (this.#retiredHead === r.length) {
      r.length = 0;
      this.#retiredHead = 0;
    } else if (this.#retiredHead > 64) {
      r.splice(0, this.#retiredHead);
      this.#retiredHead = 0;
    }
  }

  /** Slabs allocated and not yet given back to the garbage collector (for tests). */
  get held(): number {
    return (this.#current === null ? 0 : 1) + (this.#retired.length - this.#retiredHead) + this.#free.length;
  }
}
