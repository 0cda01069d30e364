// Segment files: naming, the directory lock, and directory fsync.
//
// A segment is named <seq>-<first index>-<stamp>.wal, as 16, 16 and 12 hex
// digits, so that a directory listing sorts in log order and a human can read
// where each starts. The stamp, which every record of the segment carries, is
// in the name so that it is known even where the segment's header is damaged.
// Format 2 segments have no stamp: <seq>-<first index>.wal.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "wal_error.h"

namespace raftlog {

constexpr const char* kPreallocName = "next.prealloc";
// Released segments kept for reuse as the next prepared segments (see Writer::Recycle):
// the first under this name, the others as recycled.<n>.prealloc (RecycledName).
constexpr const char* kRecycledName = "recycled.prealloc";
// The record of the last segment known durable (written by the TypeScript side, see
// src/wal/tail.ts), and the temporary file it is written to before its rename.
constexpr const char* kTailName = "TAIL";
constexpr const char* kTailTmpName = "TAIL.tmp";
// The instance id of the data directory the WAL belongs to (written and checked by the
// TypeScript side, see src/wal/owner.ts), and the temporary file it is written to.
constexpr const char* kOwnerName = "OWNER";
constexpr const char* kOwnerTmpName = "OWNER.tmp";
constexpr int kMaxRecycled = 4;
// Kept segments hold at most this much disk beyond the log (but one is always kept).
constexpr uint64_t kMaxRecycledBytes = 256ull << 20;
constexpr const char* kLockName = "LOCK";
// Appended to a released segment's name, which takes it out of the log at once;
// the file itself is removed later, off the write path (see Writer::Execute).
constexpr const char* kReleasedSuffix = ".released";

std::string SegmentName(uint64_t seq, uint64_t firstIndex, uint64_t stamp);
// A stamp of 0: a format 2 segment.
bool ParseSegmentName(const std::string& name, uint64_t* seq, uint64_t* firstIndex, uint64_t* stamp);
// A segment's name with kReleasedSuffix: never part of the log.
bool IsReleasedName(const std::string& name);
// The name of recycled segment `slot` (0 to kMaxRecycled - 1), and whether a name is one.
std::string RecycledName(int slot);
bool IsRecycledName(const std::string& name);
// Whether `name` belongs in a WAL directory: LOCK, TAIL (and TAIL.tmp), a segment, a prepared, recycled or released
// segment. Anything else there is refused (UnexpectedFile), by the scan and before a WAL is made
// in an existing directory alike.
bool IsWalName(const std::string& name);
WalError UnexpectedFile(const std::string& dir, const std::string& name);
std::string JoinPath(const std::string& dir, const std::string& name);

// fsync the directory so that a created, renamed or removed entry survives a crash.
void SyncDir(const std::string& dir);
// The same through an fd the caller holds open (no open that could hit EMFILE).
void SyncDirFd(int fd, const std::string& dir);

// A new WAL's segment 1: its name and its header record as the TypeScript side
// frames it (checksummed and stamped), prepared as the writer prepares every
// segment: `zeros` bytes of zeros written, or `reserve` bytes allocated. A WAL
// directory holds it from the moment the directory exists (see
// DirLock::Acquire), and some segment from then on: one that holds none lost
// its log.
struct FirstSegment {
  std::string name;
  std::vector<uint8_t> header;
  uint64_t zeros = 0, reserve = 0;
};

// The exclusive hold of one WAL directory.
//
// flock locks an inode, not a path: if LOCK were deleted, a second opener
// would create a fresh LOCK, lock that, and write the same segments. So the
// path must keep naming the locked inode. LOCK is only ever created together
// with a directory that has no WAL files yet; a directory that holds segments
// but no LOCK is refused (WAL_LOCK_MISSING). The holder re-checks at each
// rotation and at close (Verify): it re-creates a deleted LOCK (no one else
// can have opened meanwhile, since openers refuse a missing LOCK) and stops
// writing if LOCK names another file.
//
// flock and fsync have these meanings on local file systems only; the WAL is
// not meant for network file systems.
class DirLock {
 public:
  // Takes the lock on dir. A directory that does not exist is created
  // durably: under a temporary name in its parent with LOCK and `first`
  // inside, fsynced, renamed into place, and the parent fsynced (missing
  // parents likewise). An existing directory with neither LOCK nor WAL files
  // gets them in place, LOCK first, unless it holds a name that belongs in no
  // WAL directory: WAL_CORRUPT, and nothing made. Throws WAL_LOCKED if anyone
  // (this process included) holds the lock.
  static std::unique_ptr<DirLock> Acquire(const std::string& dir, const FirstSegment& first);
  ~DirLock();

  // Returns true if it had to re-create a deleted LOCK; throws WAL_IO if LOCK
  // now names another file (another instance may be writing the directory).
  bool Verify();

 private:
  DirLock(std::string dir, int fd);
  std::mutex mu_;
  const std::string dir_, path_;
  int fd_;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
};

}  // namespace raftlog
