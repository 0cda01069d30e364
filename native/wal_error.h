// The one error type of the native layer. `code` is the stable string the
// TypeScript face turns into an error class; `file` and `offset` are set for
// corruption so that the message can point at the damaged bytes.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace raftlog {

// Every code the native layer reports, in one table: the TypeScript face turns
// each into an error class (fromNative in src/wal/errors.ts), and a test reads
// this table and checks that every entry has its class there.
// native-codes: begin
enum class WalCode { kCorrupt, kLocked, kLockMissing, kIo, kClosed, kVersion };

inline const char* WalCodeName(WalCode c) {
  switch (c) {
    case WalCode::kCorrupt: return "WAL_CORRUPT";
    case WalCode::kLocked: return "WAL_LOCKED";
    case WalCode::kLockMissing: return "WAL_LOCK_MISSING";
    case WalCode::kIo: return "WAL_IO";
    case WalCode::kClosed: return "WAL_CLOSED";
    case WalCode::kVersion: return "WAL_VERSION";
  }
  return "WAL_IO";
}
// native-codes: end

class WalError : public std::runtime_error {
 public:
  WalError(WalCode code, const std::string& message, std::string file = "", int64_t offset = -1)
      : std::runtime_error(message), code(WalCodeName(code)), file(std::move(file)), offset(offset) {}

  const char* code;
  std::string file;
  int64_t offset;
};

// An I/O failure with the path and errno spelled out.
WalError IoError(const std::string& what, const std::string& path, int err);

}  // namespace raftlog
