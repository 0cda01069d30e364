// Writes and reads that bypass the page cache (O_DIRECT), where the file system
// allows them. Segments are written once and read back rarely, so caching them
// gains little, and on a virtual machine each new page-cache page costs a fault
// on the host (about 15 us a page): on one measured, a follower's writer thread
// spent most of its time faulting pages in, and 1 MiB writes into a new file
// ran at a third of their speed past the cache.
//
// Direct I/O moves whole blocks between block-aligned memory and block-aligned
// offsets. The writer therefore rewrites the last partial block of each group
// (from its own copy) and pads the group with zeros to the end of a block, which
// the format allows: zeros past the last record read as the end of the records.
// The TypeScript side packs records where their memory lies within a block as
// their place in the file does, so that the blocks between are written from
// there with no copy.
// While the WAL is open, segments are read through direct descriptors too, so
// that a cached copy of a block can never be read after a direct write changed
// it (the kernel drops cached copies on a direct write, but a read racing the
// write can bring one back).
#pragma once

#include <fcntl.h>

#include <cstdint>
#include <cstdlib>
#include <new>

namespace raftlog {

// The alignment used for offsets, lengths and memory: a multiple of every
// logical block size in common use (512 and 4096).
constexpr uint64_t kDirectBlock = 4096;

inline uint64_t BlockFloor(uint64_t n) { return n / kDirectBlock * kDirectBlock; }
inline uint64_t BlockCeil(uint64_t n) { return (n + kDirectBlock - 1) / kDirectBlock * kDirectBlock; }

// Turns on O_DIRECT for `fd`; false where the file system does not support it
// (tmpfs on older kernels, some FUSE and network file systems).
inline bool TryDirect(int fd) {
  int flags = fcntl(fd, F_GETFL);
  return flags >= 0 && fcntl(fd, F_SETFL, flags | O_DIRECT) == 0;
}

inline void DropDirect(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags >= 0) fcntl(fd, F_SETFL, flags & ~O_DIRECT);
}

inline bool IsDirect(int fd) {
  int flags = fcntl(fd, F_GETFL);
  return flags >= 0 && (flags & O_DIRECT) != 0;
}

// A block-aligned buffer that keeps its memory between uses.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer() { std::free(data_); }

  // At least n bytes (their content unspecified).
  uint8_t* Reserve(uint64_t n) {
    if (n > size_) {
      uint64_t want = BlockCeil(n > size_ * 2 ? n : size_ * 2);
      void* p = nullptr;
      if (posix_memalign(&p, kDirectBlock, static_cast<size_t>(want)) != 0) throw std::bad_alloc();
      std::free(data_);
      data_ = static_cast<uint8_t*>(p);
      size_ = want;
    }
    return data_;
  }

  uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }

 private:
  uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace raftlog
