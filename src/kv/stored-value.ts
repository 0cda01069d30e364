// How the KV keeps a value. A small Buffer copied with Buffer.from is a view into a
// shared 8 KiB pool, and keeps the whole pool alive: as keys are overwritten at random,
// most pools end up held by a few live values, and 100,000 values of 100 bytes held
// about 58 MB of pools. A small value is kept as a one-byte string instead, which the
// garbage collector moves and packs like any other object; a large one as a Buffer with
// memory of its own, so that reading it copies nothing.

/** A value as the map keeps it; never changed in place. */
export type StoredValue = string | Buffer;

/** Values of at least this many bytes are kept as Buffers; a string would be copied on every read. */
const BUFFER_BYTES = 4096;

/** A copy of `bytes` to keep: `bytes` may be a view into a larger buffer that must not be kept alive. */
export function storeValue(bytes: Uint8Array): StoredValue {
  if (bytes.length < BUFFER_BYTES) return latin1(bytes);
  const own = Buffer.allocUnsafeSlow(bytes.length); // never from the pool, whatever Buffer.poolSize is
  own.set(bytes);
  return own;
}

/** The bytes as a string of one character per byte. */
export function latin1(bytes: Uint8Array): string {
  // A Buffer view costs an allocation per key and value: made only for bytes that are not
  // a Buffer already.
  const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  return b.toString('latin1');
}

/** The value's bytes: a new Buffer for a small value, the stored one (not to be changed) for a large one. */
export function valueBytes(v: StoredValue): Buffer {
  return typeof v === 'string' ? Buffer.from(v, 'latin1') : v;
}
