// Segment files: naming, the directory lock, and directory fsync.
//
// A segment is named <seq>-<first index>.wal, both as 16 hex digits, so that a
// directory listing sorts in log order and a human can read where each starts.
#pragma once

#include <cstdint>
#include <string>

namespace raftlog {

constexpr const char* kPreallocName = "next.prealloc";
constexpr const char* kLockName = "LOCK";

std::string SegmentName(uint64_t seq, uint64_t firstIndex);
bool ParseSegmentName(const std::string& name, uint64_t* seq, uint64_t* firstIndex);
std::string JoinPath(const std::string& dir, const std::string& name);

// fsync the directory so that a created, renamed or removed entry survives a crash.
void SyncDir(const std::string& dir);

// Takes an exclusive flock on dir/LOCK; throws WAL_LOCKED if anyone (this
// process included) holds it. Returns the fd that holds the lock.
int LockDir(const std::string& dir);

}  // namespace raftlog
