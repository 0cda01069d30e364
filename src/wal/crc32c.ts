// CRC32C as the WAL frames its records with it, for other files that want the same
// checksum (snapshot files): native, hardware-accelerated where the CPU allows.
import { addon } from './addon.js';

/** The CRC32C of `data`; pass the result for the bytes before it as `previous` to checksum a stream in pieces. */
export function crc32c(data: Uint8Array, previous = 0): number {
  return addon().crc32c(data, false, previous);
}
