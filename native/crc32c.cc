#include "crc32c.h"

#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <nmmintrin.h>
#define RAFTLOG_X86 1
#elif defined(__aarch64__) && defined(__linux__)
// ARMv8's CRC32C instructions, optional in ARMv8.0 and mandatory from 8.1: compiled
// for the "+crc" target and used only when the kernel reports the feature.
#include <arm_acle.h>
#include <asm/hwcap.h>
#include <sys/auxv.h>
#define RAFTLOG_ARM64 1
#endif

namespace raftlog {
namespace {

constexpr uint32_t kPoly = 0x82F63B78u;  // reflected Castagnoli polynomial

struct Tables {
  uint32_t t[8][256];
  Tables() {
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
      t[0][i] = c;
    }
    // t[k][b]: the CRC of byte b followed by k zero bytes, so that eight bytes
    // can be folded in with eight independent lookups.
    for (uint32_t i = 0; i < 256; i++)
      for (int k = 1; k < 8; k++) t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xff];
  }
};
const Tables tables;

uint32_t Software(uint32_t crc, const uint8_t* p, size_t n) {
  const auto& t = tables.t;
  while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
    crc = t[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    n--;
  }
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    w ^= crc;
    crc = t[7][w & 0xff] ^ t[6][(w >> 8) & 0xff] ^ t[5][(w >> 16) & 0xff] ^ t[4][(w >> 24) & 0xff] ^
          t[3][(w >> 32) & 0xff] ^ t[2][(w >> 40) & 0xff] ^ t[1][(w >> 48) & 0xff] ^ t[0][w >> 56];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) crc = t[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return crc;
}

#ifdef RAFTLOG_X86
__attribute__((target("sse4.2"))) uint32_t Hardware(uint32_t crc, const uint8_t* p, size_t n) {
  while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
    crc = _mm_crc32_u8(crc, *p++);
    n--;
  }
#if defined(__x86_64__)
  uint64_t c = crc;
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    c = _mm_crc32_u64(c, w);
    p += 8;
    n -= 8;
  }
  crc = static_cast<uint32_t>(c);
#endif
  while (n-- > 0) crc = _mm_crc32_u8(crc, *p++);
  return crc;
}
#endif

#ifdef RAFTLOG_ARM64
__attribute__((target("+crc"))) uint32_t Hardware(uint32_t crc, const uint8_t* p, size_t n) {
  while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
    crc = __crc32cb(crc, *p++);
    n--;
  }
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    crc = __crc32cd(crc, w);
    p += 8;
    n -= 8;
  }
  while (n-- > 0) crc = __crc32cb(crc, *p++);
  return crc;
}
#endif

}  // namespace

bool Crc32cHasHardware() {
#if defined(RAFTLOG_X86)
  static const bool has = __builtin_cpu_supports("sse4.2");
  return has;
#elif defined(RAFTLOG_ARM64)
  static const bool has = (getauxval(AT_HWCAP) & HWCAP_CRC32) != 0;
  return has;
#else
  return false;
#endif
}

uint32_t Crc32cExtend(uint32_t crc, const uint8_t* data, size_t n, bool forceSoftware) {
  crc = ~crc;
#if defined(RAFTLOG_X86) || defined(RAFTLOG_ARM64)
  if (!forceSoftware && Crc32cHasHardware()) return ~Hardware(crc, data, n);
#endif
  (void)forceSoftware;
  return ~Software(crc, data, n);
}

uint32_t Crc32c(const uint8_t* data, size_t n, bool forceSoftware) { return Crc32cExtend(0, data, n, forceSoftware); }

}  // namespace raftlog
