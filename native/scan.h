// Replay: read every segment of a WAL directory in order, verify every record,
// and report what the TypeScript face needs to rebuild its position index.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace raftlog {

// Where a segment's open job stands: the records after its last marker, which
// the writer's next marker must cover too if it appends to this segment.
struct MarkState {
  uint64_t start = 0;  // offset just past the last marker (0: the segment's start)
  uint32_t records = 0;
  uint32_t crc = 0;  // CRC32C over those records' CRC fields
};

struct ScannedSegment {
  uint64_t seq;
  uint64_t firstIndex;
  uint64_t stamp;  // what every record carries (from the name); 0 in format 2
  std::string name;
  uint64_t size;  // file size
  uint64_t end;   // offset just past the last valid record
  MarkState mark;
  bool atMarker;  // the records end with a marker: a sync at `end` begins a group the scan accepts
};

// One record (segment headers are checked, not reported). For entries a, b, c
// are index, term, entry type; for hard states term, vote, commit; for
// snapshot markers index, term and 0: `metas` holds the last marker's meta alone.
struct ScannedRecord {
  uint8_t kind;
  uint32_t segment;  // position in `segments`
  uint64_t offset;
  uint32_t length;  // payload length
  uint8_t type;     // header byte 9: entry type, or snapshot flags
  uint64_t a, b, c;
};

struct TornTail {
  std::string file;
  uint64_t offset = 0;
  uint64_t droppedBytes = 0;
};

struct ScanResult {
  std::vector<ScannedSegment> segments;
  std::vector<ScannedRecord> records;
  std::vector<std::vector<uint8_t>> metas;
  bool torn = false;
  TornTail tornTail;
  // Bytes checksummed while looking for intact markers past damage: bounded by
  // twice the damaged file's size, whatever its contents.
  uint64_t searchBytes = 0;
};

// With repair, a torn tail of the last segment is zeroed (and a last segment
// with no valid header removed) so that appends can continue; without it the
// directory is only read. Damage anywhere else throws WAL_CORRUPT, and so does
// damage in segment `keepName` below `keepEnd` (where TAIL says a synced group ends):
// never a torn write.
ScanResult ScanDir(const std::string& dir, bool repair, const std::string& keepName = "", uint64_t keepEnd = 0);

}  // namespace raftlog
