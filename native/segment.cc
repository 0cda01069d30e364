#include "platform.h"
#include "segment.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "wal_error.h"

namespace raftlog {

WalError IoError(const std::string& what, const std::string& path, int err) {
  return WalError(WalCode::kIo, what + " " + path + ": " + strerror(err));
}

std::string SegmentName(uint64_t seq, uint64_t firstIndex, uint64_t stamp) {
  char buf[64];
  if (stamp == 0)
    snprintf(buf, sizeof buf, "%016" PRIx64 "-%016" PRIx64 ".wal", seq, firstIndex);
  else
    snprintf(buf, sizeof buf, "%016" PRIx64 "-%016" PRIx64 "-%012" PRIx64 ".wal", seq, firstIndex, stamp);
  return buf;
}

bool ParseSegmentName(const std::string& name, uint64_t* seq, uint64_t* firstIndex, uint64_t* stamp) {
  constexpr size_t kFormat2 = 16 + 1 + 16 + 4, kFormat3 = kFormat2 + 1 + 12;
  if ((name.size() != kFormat2 && name.size() != kFormat3) || name[16] != '-' || name.compare(name.size() - 4, 4, ".wal") != 0)
    return false;
  auto hex = [](const std::string& s, size_t at, size_t digits, uint64_t* out) {
    uint64_t v = 0;
    for (size_t i = at; i < at + digits; i++) {
      char c = s[i];
      int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (d < 0) return false;
      v = v << 4 | static_cast<uint64_t>(d);
    }
    *out = v;
    return true;
  };
  *stamp = 0;
  if (!hex(name, 0, 16, seq) || !hex(name, 17, 16, firstIndex)) return false;
  // Numbers JavaScript holds exactly, as every one the WAL writes is: a larger one was never written by it.
  constexpr uint64_t kMaxSafe = (1ull << 53) - 1;
  if (*seq > kMaxSafe || *firstIndex > kMaxSafe) return false;
  if (name.size() == kFormat2) return true;
  return name[33] == '-' && hex(name, 34, 12, stamp) && *stamp != 0;
}

bool IsReleasedName(const std::string& name) {
  const size_t n = strlen(kReleasedSuffix);
  uint64_t seq, first, stamp;
  return name.size() > n && name.compare(name.size() - n, n, kReleasedSuffix) == 0 &&
         ParseSegmentName(name.substr(0, name.size() - n), &seq, &first, &stamp);
}

std::string RecycledName(int slot) { return slot == 0 ? kRecycledName : "recycled." + std::to_string(slot) + ".prealloc"; }

bool IsRecycledName(const std::string& name) {
  for (int slot = 0; slot < kMaxRecycled; slot++)
    if (name == RecycledName(slot)) return true;
  return false;
}

bool IsWalName(const std::string& name) {
  uint64_t seq, first, stamp;
  return name == kLockName || name == kTailName || name == kTailTmpName || name == kOwnerName || name == kOwnerTmpName ||
         name == kPreallocName || IsRecycledName(name) || ParseSegmentName(name, &seq, &first, &stamp) ||
         IsReleasedName(name);
}

std::string JoinPath(const std::string& dir, const std::string& name) { return dir + "/" + name; }

WalError UnexpectedFile(const std::string& dir, const std::string& name) {
  // A segment renamed, a file copied in by hand: nothing here may be guessed at.
  return WalError(WalCode::kCorrupt,
                  "unexpected file " + name + " in WAL directory " + dir + " (only segments, LOCK, TAIL, OWNER, " + kPreallocName +
                      ", recycled and released segments belong there)",
                  JoinPath(dir, name), -1);
}

void SyncDirFd(int fd, const std::string& dir) {
  if (fsync(fd) != 0) throw IoError("fsync directory", dir, errno);
}

void SyncDir(const std::string& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw IoError("open directory", dir, errno);
  try {
    SyncDirFd(fd, dir);
  } catch (...) {
    close(fd);
    throw;
  }
  close(fd);
}

namespace {

std::string Parent(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string Base(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

WalError Locked(const std::string& dir) {
  return WalError(WalCode::kLocked, "WAL directory " + dir + " is already open (locked by " + JoinPath(dir, kLockName) +
                                    "); close the other instance or process first");
}

WalError Fenced(const std::string& dir) {
  return WalError(WalCode::kIo, JoinPath(dir, kLockName) +
                                " no longer names the file this instance locked: another instance may be writing " +
                                dir + ", so this one stops writing");
}

// A segment or a prepared segment marks a directory a WAL has written to.
bool HasWalFiles(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) throw IoError("open directory", dir, errno);
  bool found = false;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name != kLockName && IsWalName(name)) {
      found = true;
      break;
    }
  }
  closedir(d);
  return found;
}

// The scan would refuse any other name, but only after the open made LOCK and segment 1 here:
// that empty WAL would outlive the refusal, and once the name is removed pass for the log.
void RefuseUnexpectedFiles(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) throw IoError("open directory", dir, errno);
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != ".." && !IsWalName(name)) {
      closedir(d);
      throw UnexpectedFile(dir, name);
    }
  }
  closedir(d);
}

// Creates dir and any missing parents; each new entry is fsynced in its parent.
void MakeDirsDurable(const std::string& dir) {
  struct stat st;
  if (stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) throw IoError("use as a directory", dir, ENOTDIR);
    return;
  }
  if (errno != ENOENT) throw IoError("stat", dir, errno);
  std::string parent = Parent(dir);
  MakeDirsDurable(parent);
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) throw IoError("create directory", dir, errno);
  SyncDir(parent);
}

void Flock(int fd, const std::string& dir) {
  if (flock(fd, LOCK_EX | LOCK_NB) == 0) return;
  int err = errno;
  if (err == EWOULDBLOCK) throw Locked(dir);
  throw IoError("lock", JoinPath(dir, kLockName), err);
}

// Writes `first` into dir as a new file, prepared, and syncs it; the caller syncs dir.
void WriteFirstSegment(const std::string& dir, const FirstSegment& first) {
  std::string path = JoinPath(dir, first.name);
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) throw IoError("create segment", path, errno);
  auto fail = [&](const char* what, int err) {
    close(fd);
    return IoError(what, path, err);
  };
  if (first.reserve > 0) {
    int err = posix_fallocate(fd, 0, static_cast<off_t>(first.reserve));
    if (err != 0) throw fail("fallocate", err);
  }
  std::vector<uint8_t> bytes(std::max<uint64_t>(first.zeros, first.header.size()), 0);
  std::copy(first.header.begin(), first.header.end(), bytes.begin());
  for (size_t done = 0; done < bytes.size();) {
    ssize_t n = pwrite(fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw fail("write", errno);
    done += static_cast<size_t>(n);
  }
  if (fdatasync(fd) != 0) throw fail("fdatasync", errno);
  close(fd);
}

// Creates a new WAL directory the way a crash cannot leave half made: the
// directory appears under its name only with LOCK and segment 1 (its header
// synced) inside, and its entry is durable before anything is written into
// it. So a WAL directory without a segment is one that lost its log, never a
// new one. Returns the fd holding the lock, or -1 if someone else created dir
// meanwhile.
int CreateWalDir(const std::string& dir, const FirstSegment& first) {
  static std::atomic<unsigned> counter{0};
  std::string parent = Parent(dir);
  MakeDirsDurable(parent);
  std::string tmp = JoinPath(parent, "." + Base(dir) + ".creating-" + std::to_string(getpid()) + "-" +
                                         std::to_string(counter++));
  std::string lockPath = JoinPath(tmp, kLockName), segmentPath = JoinPath(tmp, first.name);
  if (mkdir(tmp.c_str(), 0700) != 0) throw IoError("create directory", tmp, errno);
  int fd = -1;
  auto undo = [&] {
    if (fd >= 0) close(fd);
    unlink(segmentPath.c_str());
    unlink(lockPath.c_str());
    rmdir(tmp.c_str());
  };
  try {
    fd = open(lockPath.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) throw IoError("create lock file", lockPath, errno);
    Flock(fd, tmp);
    WriteFirstSegment(tmp, first);
    SyncDir(tmp);
    if (rename(tmp.c_str(), dir.c_str()) != 0) {
      int err = errno;
      if (err != EEXIST && err != ENOTEMPTY) throw IoError("rename " + tmp + " to", dir, err);
      undo();
      return -1;
    }
  } catch (...) {
    undo();
    throw;
  }
  try {
    SyncDir(parent);
  } catch (...) {
    close(fd);
    throw;
  }
  return fd;
}

}  // namespace

DirLock::DirLock(std::string dir, int fd) : dir_(std::move(dir)), path_(JoinPath(dir_, kLockName)), fd_(fd) {
  struct stat st;
  if (fstat(fd_, &st) != 0) {
    int err = errno;
    close(fd_);
    throw IoError("stat", path_, err);
  }
  dev_ = st.st_dev;
  ino_ = st.st_ino;
}

DirLock::~DirLock() {
  if (fd_ >= 0) close(fd_);
}

std::unique_ptr<DirLock> DirLock::Acquire(const std::string& dir, const FirstSegment& first) {
  std::string path = JoinPath(dir, kLockName);
  // Each retry means another process created, replaced or removed LOCK
  // between two of our steps; a few in a row mean something keeps doing so.
  for (int attempt = 0; attempt < 8; attempt++) {
    struct stat st;
    if (stat(dir.c_str(), &st) != 0) {
      if (errno != ENOENT) throw IoError("stat", dir, errno);
      int fd = CreateWalDir(dir, first);
      if (fd >= 0) return std::unique_ptr<DirLock>(new DirLock(dir, fd));
      continue;
    }
    if (!S_ISDIR(st.st_mode)) throw IoError("open WAL directory", dir, ENOTDIR);
    int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
    bool created = false;
    if (fd < 0 && errno == ENOENT) {
      if (HasWalFiles(dir))
        throw WalError(WalCode::kLockMissing,
                       "WAL directory " + dir + " holds segments but no " + kLockName +
                           " file, so it may still be open in a process whose lock file was removed. Make sure no "
                           "process uses it, then create an empty file " +
                           path + " and open it again");
      RefuseUnexpectedFiles(dir);
      fd = open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      if (fd < 0 && errno == EEXIST) continue;
      created = true;
    }
    if (fd < 0) throw IoError("open lock file", path, errno);
    std::unique_ptr<DirLock> lock(new DirLock(dir, fd));
    Flock(lock->fd_, dir);
    // The lock counts only if LOCK still names the inode just locked.
    if (stat(path.c_str(), &st) != 0 || st.st_dev != lock->dev_ || st.st_ino != lock->ino_) continue;
    if (created) {
      // A directory made by someone else (a mount point, say), empty of WAL files: made a WAL
      // here, LOCK first. A crash before segment 1 is durable leaves LOCK alone, which the
      // next open refuses as a WAL that lost its log; nothing was ever written to it.
      try {
        WriteFirstSegment(dir, first);
      } catch (...) {
        unlink(JoinPath(dir, first.name).c_str());
        unlink(path.c_str());
        throw;
      }
      SyncDir(dir);
    }
    // The directory's own entry: its creator (a user, or an open that failed
    // after creating it) may never have synced it. One fsync per open.
    SyncDir(Parent(dir));
    return lock;
  }
  throw WalError(WalCode::kLocked, "the lock file of WAL directory " + dir +
                                   " keeps changing while opening it; another process is opening or removing it");
}

bool DirLock::Verify() {
  std::lock_guard<std::mutex> guard(mu_);
  struct stat st;
  if (stat(path_.c_str(), &st) == 0) {
    if (st.st_dev == dev_ && st.st_ino == ino_) return false;
    throw Fenced(dir_);
  }
  if (errno != ENOENT) throw IoError("stat", path_, errno);
  // LOCK was deleted while we held it. Every opener refuses a WAL directory
  // without LOCK, so no one else can be writing: put the fence back.
  int fd = open(path_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) throw Fenced(dir_);
    throw IoError("re-create lock file", path_, errno);
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0 || fstat(fd, &st) != 0) {
    close(fd);
    throw Fenced(dir_);
  }
  close(fd_);
  fd_ = fd;
  dev_ = st.st_dev;
  ino_ = st.st_ino;
  SyncDir(dir_);
  return true;
}

}  // namespace raftlog
