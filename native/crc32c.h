// CRC32C (Castagnoli): the SSE4.2 instruction (x86-64) or the ARMv8 CRC32
// instructions (arm64) where the CPU has them, in three streams over inputs of
// 192 bytes or more; a slicing-by-8 table otherwise.
#pragma once

#include <cstddef>
#include <cstdint>

namespace raftlog {

bool Crc32cHasHardware();
uint32_t Crc32c(const uint8_t* data, size_t n, bool forceSoftware = false);
// The CRC32C of (the bytes whose CRC32C is `crc`) followed by data[0, n): checksums a stream in pieces.
uint32_t Crc32cExtend(uint32_t crc, const uint8_t* data, size_t n, bool forceSoftware = false);

}  // namespace raftlog
