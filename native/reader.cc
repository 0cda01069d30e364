#include "reader.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "crc32c.h"
#include "direct_io.h"
#include "record.h"
#include "wal_error.h"

namespace raftlog {

namespace {

// Bytes [offset, offset + length) of the file into `out`; fewer at the file's end.
size_t ReadBuffered(int fd, const std::string& path, uint64_t offset, size_t length, uint8_t* out) {
  size_t done = 0;
  while (done < length) {
    ssize_t n = pread(fd, out + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw IoError("read", path, errno);
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

// The same through a direct descriptor: the whole blocks around the range, then a copy.
size_t ReadDirect(int fd, const std::string& path, uint64_t offset, size_t length, uint8_t* out) {
  if (length == 0) return 0;
  const uint64_t begin = BlockFloor(offset);
  const uint64_t total = BlockCeil(offset + length) - begin;
  AlignedBuffer buf;
  uint8_t* b = buf.Reserve(total);
  uint64_t done = 0;
  while (done < total) {
    ssize_t n = pread(fd, b + done, static_cast<size_t>(total - done), static_cast<off_t>(begin + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EINVAL && done == 0) {
      // The device wants a larger alignment: read through the page cache from now on.
      DropDirect(fd);
      return ReadBuffered(fd, path, offset, length, out);
    }
    if (n < 0) throw IoError("read", path, errno);
    if (n == 0) break;
    done += static_cast<uint64_t>(n);
    if (done % kDirectBlock != 0) break;  // the file's end
  }
  const uint64_t skip = offset - begin;
  const size_t got = done > skip ? static_cast<size_t>(std::min<uint64_t>(done - skip, length)) : 0;
  memcpy(out, b + skip, got);
  return got;
}

}  // namespace

void ReadRecords(int fd, const std::string& path, uint64_t offset, size_t length, uint8_t* out) {
  size_t done = IsDirect(fd) ? ReadDirect(fd, path, offset, length, out) : ReadBuffered(fd, path, offset, length, out);
  if (done < length) throw WalError(WalCode::kCorrupt, "unexpected end of " + path, path, static_cast<int64_t>(offset + done));
  for (size_t at = 0; at < length;) {
    const uint8_t* h = out + at;
    bool ok = length - at >= kHeaderBytes;
    uint32_t len = ok ? Load32(h + 4) : 0;
    ok = ok && len <= length - at - kHeaderBytes && Crc32c(h + 4, kHeaderBytes - 4 + len) == Load32(h);
    if (!ok)
      throw WalError(WalCode::kCorrupt,
                     "corrupt WAL record in " + path + " at offset " + std::to_string(offset + at) + ": checksum mismatch on read",
                     path, static_cast<int64_t>(offset + at));
    at += Align8(kHeaderBytes + len);
  }
}

}  // namespace raftlog
