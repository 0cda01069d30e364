#include "segment.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "wal_error.h"

namespace raftlog {

WalError IoError(const std::string& what, const std::string& path, int err) {
  return WalError("WAL_IO", what + " " + path + ": " + strerror(err));
}

std::string SegmentName(uint64_t seq, uint64_t firstIndex) {
  char buf[64];
  snprintf(buf, sizeof buf, "%016" PRIx64 "-%016" PRIx64 ".wal", seq, firstIndex);
  return buf;
}

bool ParseSegmentName(const std::string& name, uint64_t* seq, uint64_t* firstIndex) {
  if (name.size() != 16 + 1 + 16 + 4 || name[16] != '-' || name.compare(33, 4, ".wal") != 0) return false;
  auto hex = [](const std::string& s, size_t at, uint64_t* out) {
    uint64_t v = 0;
    for (size_t i = at; i < at + 16; i++) {
      char c = s[i];
      int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (d < 0) return false;
      v = v << 4 | static_cast<uint64_t>(d);
    }
    *out = v;
    return true;
  };
  return hex(name, 0, seq) && hex(name, 17, firstIndex);
}

std::string JoinPath(const std::string& dir, const std::string& name) { return dir + "/" + name; }

void SyncDir(const std::string& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw IoError("open directory", dir, errno);
  if (fsync(fd) != 0) {
    int err = errno;
    close(fd);
    throw IoError("fsync directory", dir, err);
  }
  close(fd);
}

int LockDir(const std::string& dir) {
  std::string path = JoinPath(dir, kLockName);
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw IoError("open lock file", path, errno);
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    close(fd);
    if (err == EWOULDBLOCK)
      throw WalError("WAL_LOCKED", "WAL directory " + dir + " is already open (locked by " + path +
                                       "); close the other instance or process first");
    throw IoError("lock", path, err);
  }
  return fd;
}

}  // namespace raftlog
