// The one error type of the native layer. `code` is the stable string the
// TypeScript face turns into an error class; `file` and `offset` are set for
// corruption so that the message can point at the damaged bytes.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace raftlog {

class WalError : public std::runtime_error {
 public:
  WalError(std::string code, const std::string& message, std::string file = "", int64_t offset = -1)
      : std::runtime_error(message), code(std::move(code)), file(std::move(file)), offset(offset) {}

  std::string code;
  std::string file;
  int64_t offset;
};

// An I/O failure with the path and errno spelled out.
WalError IoError(const std::string& what, const std::string& path, int err);

}  // namespace raftlog
