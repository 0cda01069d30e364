// CRC32C (Castagnoli): the SSE4.2 instruction where the CPU has it, a
// slicing-by-8 table otherwise.
#pragma once

#include <cstddef>
#include <cstdint>

namespace raftlog {

bool Crc32cHasHardware();
uint32_t Crc32c(const uint8_t* data, size_t n, bool forceSoftware = false);

}  // namespace raftlog
