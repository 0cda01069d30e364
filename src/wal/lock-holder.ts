// Whether a process holds a WAL directory's LOCK, found without taking it: a lock taken to
// test it, however briefly, makes a node that opens the directory at that moment fail with
// WAL_LOCKED. Linux lists every flock in /proc/locks, by device and inode.
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

// "3: FLOCK  ADVISORY  WRITE 544 fe:00:2222420 0 EOF"; a waiter's line has "->" before FLOCK.
const HELD = /^\d+: FLOCK\s+\S+\s+\S+\s+(\d+)\s+([0-9a-f]+):([0-9a-f]+):(\d+)\s/gm;

/** The pid of the process that holds `walDir`'s LOCK, or null if none does (or this cannot be known: no LOCK, no /proc). */
export function lockHolder(walDir: string): number | null {
  let dev: bigint;
  let ino: bigint;
  let locks: string;
  try {
    ({ dev, ino } = statSync(join(walDir, 'LOCK'), { bigint: true }));
    locks = readFileSync('/proc/locks', 'latin1');
  } catch {
    return null;
  }
  // glibc's major() and minor() of a dev_t.
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  for (const m of locks.matchAll(HELD)) {
    if (BigInt(`0x${m[2]}`) === major && BigInt(`0x${m[3]}`) === minor && BigInt(m[4]!) === ino) return Number(m[1]);
  }
  return null;
}
