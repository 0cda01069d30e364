// The WAL's defaults, in one place: ReplicatedLog and `raftlog serve` take
// theirs from here, so a bare Wal, an embedded log and a server behave alike.

export const WAL_DEFAULTS = {
  /**
   * Target size of a segment file. It bounds what a snapshot can release at
   * once, not what a small log takes: with 'zeros' a segment is only zeroed
   * a few MiB ahead of the write position.
   */
  segmentBytes: 64 * 1024 * 1024,
  /**
   * 'zeros': a new segment starts with 1 MiB of zeros, and the writer thread,
   * when idle, zeroes further ahead in steps doubling up to 8 MiB. Commits at
   * low rates write into blocks already allocated and initialized (no extent
   * or size change to journal at fdatasync); under a steady load the file
   * grows with the data and no byte is written twice. A fresh log takes about
   * 2 MiB on disk.
   */
  preallocate: 'zeros',
  /** Byte budget of the cache of recent entries. */
  cacheBytes: 8 * 1024 * 1024,
} as const;
