#include "reader.h"

#include <unistd.h>

#include <cerrno>

#include "crc32c.h"
#include "record.h"
#include "wal_error.h"

namespace raftlog {

void ReadRecords(int fd, const std::string& path, uint64_t offset, size_t length, uint8_t* out) {
  size_t done = 0;
  while (done < length) {
    ssize_t n = pread(fd, out + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw IoError("read", path, errno);
    if (n == 0) throw WalError(WalCode::kCorrupt, "unexpected end of " + path, path, static_cast<int64_t>(offset + done));
    done += static_cast<size_t>(n);
  }
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
