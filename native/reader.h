// Reading records back: one pread of a span of whole records, every CRC
// checked before any byte is handed to JS.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace raftlog {

// Fills out[0, length) from fd at offset; throws WAL_CORRUPT (naming path and
// the record's offset) if a record in the span is short or fails its CRC.
void ReadRecords(int fd, const std::string& path, uint64_t offset, size_t length, uint8_t* out);

}  // namespace raftlog
