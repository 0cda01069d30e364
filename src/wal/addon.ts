// Loads the compiled addon the way the ecosystem does (node-gyp-build finds
// build/Release or a prebuild) and describes its shape for TypeScript.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WalNotBuiltError } from './errors.js';

export interface NativeSegment {
  seq: number;
  firstIndex: number;
  name: string;
  size: number;
  end: number;
  /**
   * The segment's open group (the records since the writer's last sync), which the writer's next
   * marker there must cover; `atMarker`: the records end with a marker.
   */
  mark: { start: number; records: number; crc: number; atMarker: boolean };
}

export interface NativeScan {
  segments: NativeSegment[];
  /** Eight numbers per record: kind, segment position, offset, payload length, type/flags, a, b, c. */
  records: Float64Array;
  /** The last snapshot marker's meta, alone (every marker's c is 0): replay needs no other. */
  metas: Uint8Array[];
  torn: { file: string; offset: number; droppedBytes: number } | null;
  /** Bytes checksummed while looking for an intact marker after damage (at most twice the damaged file's size). */
  searchBytes: number;
}

export interface NativeStats {
  writes: number;
  fsyncs: number;
  bytes: number;
  groups: number;
  inlineGroups: number;
  segmentsCreated: number;
  segmentsRemoved: number;
  segmentsRecycled: number;
  stagingBytes: number;
  /** Per-bucket counts of fdatasync durations, bounds FSYNC_BUCKETS then +Inf. */
  fsyncBuckets: number[];
  fsyncSeconds: number;
}

export interface NativeHandle {
  /** Damage in segment `keepName` below `keepEnd` (TAIL's claim) is corruption, never a torn write. */
  scanAsync(cb: (err: Error | null, scan?: NativeScan) => void, keepName?: string, keepEnd?: number): void;
  start(
    segmentBytes: number,
    sync: boolean,
    prealloc: number,
    lastSeq: number,
    lastName: string,
    onReport: (lastId: number, error?: string) => void,
    /** A failure the writer works around (retrying to prepare the next segment, re-creating a deleted LOCK). */
    onNotice: (message: string, attempt: number, delayMs: number) => void,
    markStart: number,
    markRecords: number,
    markCrc: number,
    /** Where the last segment's records end, and whether they end with a marker. */
    end: number,
    atMarker: boolean,
  ): void;
  /**
   * Six numbers per chunk in plan: buffer position, begin, end, seq, offset, firstIndex. Returns the
   * job id, negated when the writer was idle and the job already ran (durable) on this thread.
   */
  submit(buffers: Uint8Array[], plan: Float64Array, chunks: number, mayInline: boolean): number;
  release(names: string[]): number;
  /** A job that checks LOCK still names the locked file, once everything before it is durable; if not, the writer fails for good (WAL_IO) and writes nothing of its group. */
  fence(): number;
  close(): number;
  dispose(): void;
  read(name: string, offset: number, length: number): Buffer;
  readAsync(name: string, offset: number, length: number, cb: (err: Error | null, data?: Buffer) => void): void;
  stats(): NativeStats;
  ref(): void;
  unref(): void;
}

export interface NativeAddon {
  /**
   * Locks `dir`; a new WAL directory is made with segment 1 in it (`firstName`, holding its header
   * `firstHeader` alone), prepared as start() prepares a segment with the same `prealloc` and `segmentBytes`.
   */
  WalHandle: new (dir: string, firstName: string, firstHeader: Uint8Array, prealloc: number, segmentBytes: number) => NativeHandle;
  /** Read-only; `keepName`, `keepEnd` as for scanAsync. */
  scan(dir: string, keepName?: string, keepEnd?: number): NativeScan;
  /** CRC32C of data; with `previous`, of the bytes `previous` was computed over followed by data. */
  crc32c(data: Uint8Array, software?: boolean, previous?: number): number;
  /** The largest job that may run on the submitting thread (submit's mayInline). */
  inlineMaxBytes: number;
  /** Where data's first byte lies within a block of memory: its address modulo BLOCK_BYTES. */
  blockPhase(data: Uint8Array): number;
}

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'binding.gyp'))) {
    const up = dirname(dir);
    if (up === dir) throw new WalNotBuiltError('cannot find the raftlog package root (binding.gyp) above ' + dirname(fileURLToPath(import.meta.url)));
    dir = up;
  }
  return dir;
}

let loaded: NativeAddon | undefined;

/** The addon, loaded on first use. Throws WalNotBuiltError with the fix if it was never compiled. */
export function addon(): NativeAddon {
  if (loaded !== undefined) return loaded;
  const require = createRequire(import.meta.url);
  const root = packageRoot();
  try {
    const load = require('node-gyp-build') as (dir: string) => unknown;
    loaded = load(root) as NativeAddon;
  } catch (err) {
    throw new WalNotBuiltError(
      `the native WAL addon is not built in ${root} (where raftlog is installed as a dependency, run ` +
        `\`npm rebuild raftlog\`; in a clone of raftlog, \`npm run build:native\`; either needs python3, make and a C++ compiler): ` +
        (err as Error).message,
      { cause: err },
    );
  }
  return loaded;
}
