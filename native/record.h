// The on-disk record framing shared by the scanner, the writer and the reader.
// docs/wal-format.md describes the whole format, and what replay makes of damage.
//
// Every record is a 16-byte header, `length` payload bytes, then zero padding
// to a multiple of 8 so that every header starts 8-byte aligned:
//
//   0  u32  crc32c of bytes [4, 16 + length)   (covers the rest of the header too)
//   4  u32  length of the payload
//   8  u8   kind
//   9  u8   entry type (entries), flags (snapshot markers: 1 = discard the log)
//  10  u48  the segment's stamp, drawn at random for each segment (zero in format 2)
//
// An all-zero header is the end of the records in a segment: the writer puts
// one after every group it writes (with direct I/O, in the zeros that pad the
// group's last block). Past it a segment holds zeros, nothing (the
// file ends), or records of the file's earlier life as another segment, which
// carry another stamp: a segment file is reused without being cleared.
//
// Every write job ends with a marker record naming its group: where the writer
// last synced, and the count and CRC32C of the CRC fields of the records since.
// An intact marker of a group that began after some damaged bytes proves those
// bytes had been synced; a clean close adds one, a seal.
#pragma once

#include <cstdint>
#include <cstring>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "raftlog's WAL format is little-endian and is only built for little-endian machines"
#endif

namespace raftlog {

constexpr uint32_t kHeaderBytes = 16;
constexpr uint32_t kMaxPayload = 1u << 30;

enum Kind : uint8_t {
  kKindNone = 0,
  kKindSegment = 1,    // payload: magic u64, seq u64, first index u64
  kKindEntry = 2,      // payload: index u64, term u64, data
  kKindHardState = 3,  // payload: term u64, vote u64, commit u64
  kKindSnapshot = 4,   // payload: index u64, term u64, meta
  kKindMarker = 5,     // payload: group start offset u64, records u32, crc32c of their CRC fields u32
};

constexpr uint8_t kSnapshotDiscardLog = 1;
constexpr uint64_t kSegmentMagic = 0x336c617774666172ull;    // "raftwal3"
constexpr uint64_t kSegmentMagicV2 = 0x326c617774666172ull;  // "raftwal2": no stamps; read, appended to as such
constexpr uint64_t kSegmentMagicV1 = 0x316c617774666172ull;  // "raftwal1": no markers; refused
constexpr uint32_t kSegmentPayload = 24;
constexpr uint32_t kHardStatePayload = 24;
constexpr uint32_t kEntryPrefix = 16;
constexpr uint32_t kSnapshotPrefix = 16;
constexpr uint32_t kMarkerPayload = 16;
constexpr uint32_t kMarkerBytes = 32;  // header + payload

// The largest segment file the writer makes, whatever its options were (segmentBytes is
// at most 2^30): a segment takes records while they fit in segmentBytes, but the first
// record after its prelude goes in whatever its size, and a prelude holds a snapshot
// marker (at most one record) besides its header and hard state. Then come at most two
// markers: that job's and a close's seal, or two seals where a crash kept the job's
// marker from the disk (a close that wrote nothing adds none once the last group is a
// seal's own). A direct write rounds the file up to a whole block. Preallocation, zeroing ahead and reuse never make a file larger than
// segmentBytes rounded up to a block. Open refuses a larger file before reading it.
constexpr uint64_t kMaxRecordBytes = (kHeaderBytes + uint64_t(kMaxPayload) + 7) & ~uint64_t(7);
constexpr uint64_t kMaxSegmentFileBytes =
    ((kSegmentPayload + kHeaderBytes) + kMaxRecordBytes + (kHardStatePayload + kHeaderBytes) + kMaxRecordBytes + 2 * kMarkerBytes + 4095) /
    4096 * 4096;
static_assert(kMaxSegmentFileBytes == (2ull << 30) + 4096, "docs/wal-format.md states this bound");

inline uint64_t Align8(uint64_t n) { return (n + 7) & ~uint64_t(7); }

inline uint32_t Load32(const uint8_t* p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}
inline uint64_t Load64(const uint8_t* p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}
inline void Store32(uint8_t* p, uint32_t v) { memcpy(p, &v, 4); }
inline void Store64(uint8_t* p, uint64_t v) { memcpy(p, &v, 8); }

inline uint64_t LoadStamp(const uint8_t* header) { return Load64(header + 8) >> 16; }
inline void StoreStamp(uint8_t* header, uint64_t stamp) {
  Store64(header + 8, (Load64(header + 8) & 0xffff) | (stamp << 16));
}

}  // namespace raftlog
