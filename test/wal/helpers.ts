import { closeSync, constants, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addon } from '../../src/wal/addon.js';
import { Wal, type WalEntry, type WalOptions } from '../../src/wal/index.js';

const made: string[] = [];

export function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'raftlog-wal-'));
  made.push(d);
  return d;
}

/** Whether the file system under the temporary directories takes O_DIRECT (the WAL then writes past the page cache). */
export function directIo(): boolean {
  const probe = join(tempDir(), 'probe');
  try {
    closeSync(openSync(probe, constants.O_CREAT | constants.O_RDWR | constants.O_DIRECT));
    return true;
  } catch {
    return false;
  } finally {
    rmSync(probe, { force: true });
  }
}

export function cleanTempDirs(): void {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** Deterministic payload for (index, term, salt): a test can rebuild exactly what was written. */
export function payload(index: number, term: number, salt = 0, length = 1 + ((index * 7919 + salt) % 200)): Uint8Array {
  const out = new Uint8Array(length);
  let x = (index * 2654435761 + term * 40503 + salt * 97) >>> 0;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

export function entry(index: number, term = 1, salt = 0, length?: number): WalEntry {
  return { index, term, type: index % 3 === 0 ? 1 : 0, data: payload(index, term, salt, length) };
}

export function range(lo: number, hi: number, term = 1, salt = 0, length?: number): WalEntry[] {
  const out: WalEntry[] = [];
  for (let i = lo; i < hi; i++) out.push(entry(i, term, salt, length));
  return out;
}

/** Plain objects with plain Uint8Arrays, so that toEqual compares content, not Buffer vs Uint8Array. */
/** Entries as plain objects toEqual compares quickly: the bytes as hex (an array of numbers per byte costs seconds for a few MiB). */
export function plain(es: WalEntry[]): { index: number; term: number; type: number; data: string }[] {
  return es.map((e) => ({
    index: e.index,
    term: e.term,
    type: e.type,
    data: Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength).toString('hex'),
  }));
}

/** Counts the reads `wal` makes from disk on the calling thread (entriesSync below its cache) from now on. */
export function countReadsOnCaller(wal: Wal): () => number {
  let reads = 0;
  const entriesSync = wal.entriesSync.bind(wal);
  wal.entriesSync = (lo, hi, maxBytes) => {
    if (lo < wal.cachedFrom) reads++;
    return entriesSync(lo, hi, maxBytes);
  };
  return () => reads;
}

/**
 * Opens a WAL whose native handle calls `onRead(n)` just after it starts its n-th read off
 * the event loop (entries() below the cache), while that read is in flight.
 */
export async function openWatchingReads(dir: string, options: WalOptions, onRead: (n: number) => void): Promise<Wal> {
  type Handle = { readAsync(...args: unknown[]): void };
  const native = addon() as unknown as { WalHandle: new (dir: string) => Handle };
  const Native = native.WalHandle;
  let reads = 0;
  native.WalHandle = class extends Native {
    override readAsync(...args: unknown[]): void {
      super.readAsync(...args);
      onRead(++reads);
    }
  };
  try {
    return await Wal.open(dir, options);
  } finally {
    native.WalHandle = Native;
  }
}
