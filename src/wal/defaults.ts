// The WAL's defaults, in one place: ReplicatedLog and `raftlog serve` take
// theirs from here, so a bare Wal, an embedded log and a server behave alike.

export const WAL_DEFAULTS = {
  /**
   * Target size of a segment file. It bounds what a snapshot can release at
   * once, not what a small log takes: with 'zeros' (and 'none') a segment
   * takes only what has been zeroed a few MiB ahead of the records (or written).
   */
  segmentBytes: 64 * 1024 * 1024,
  /**
   * 'zeros': a segment is zeroed a few MiB ahead of the records (1 MiB at
   * first, more while the writer is idle), so most commits write into
   * initialized blocks and the fdatasync carries no size change; a fresh log
   * takes about 2 MiB. Measured on the embedded log (100 B and 1 KiB records,
   * 1 to 256 clients, the strategies in turn): 'zeros' was 1.1-1.5x 'none' in
   * records/s and cheaper in CPU per append. The bare WAL with 16 MiB in
   * flight favours 'none' (README.md, "Preallocation"): choose it for bulk
   * writers of large batches.
   */
  preallocate: 'zeros',
  /**
   * Memory budget of the cache of recent entries (WalOptions.cacheBytes says what counts).
   * A snapshot's catch-up window copies up to 8 MiB of entries from it, and the slabs the
   * entries lie in hold more than their data (headers, hard states, and a write over
   * 256 KiB has a slab of its own, a power of two). With 8 MiB, an embedded log at 1 KiB x
   * 256 clients read most of each window from disk (123 MiB over 19 snapshots in 4 s;
   * 19 MiB with 16) and made 0.92x the records/s (four interleaved pairs); 16 MiB of
   * slabs hold about 8 MiB of such entries.
   */
  cacheBytes: 16 * 1024 * 1024,
} as const;
