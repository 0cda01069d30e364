#include "platform.h"
#include "scan.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "crc32c.h"
#include "record.h"
#include "segment.h"
#include "wal_error.h"

namespace raftlog {
namespace {

bool AllZero(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != 0) return false;
  return true;
}

// Why the record at `off` cannot be used, or nullptr if it is a valid record of
// the segment whose records carry `stamp`.
const char* CheckRecord(const uint8_t* p, size_t size, size_t off, uint64_t stamp) {
  if (size - off < kHeaderBytes) return "truncated header";
  const uint8_t* h = p + off;
  uint32_t length = Load32(h + 4);
  uint8_t kind = h[8];
  if (kind < kKindSegment || kind > kKindMarker) return "unknown record kind";
  if (LoadStamp(h) != stamp) return stamp == 0 ? "nonzero reserved header bytes" : "record of an earlier use of this file (another stamp)";
  // The padding counts: a record is whole only if the writer's next record could start after it.
  if (length > kMaxPayload || Align8(kHeaderBytes + length) > size - off) return "record runs past the end of the file";
  switch (kind) {
    case kKindSegment:
      if (length != kSegmentPayload) return "bad segment header length";
      break;
    case kKindHardState:
      if (length != kHardStatePayload) return "bad hard state length";
      break;
    case kKindEntry:
      if (length < kEntryPrefix) return "entry record too short";
      break;
    case kKindSnapshot:
      if (length < kSnapshotPrefix) return "snapshot record too short";
      break;
    case kKindMarker:
      if (length != kMarkerPayload) return "bad marker length";
      break;
  }
  if (Crc32c(h + 4, kHeaderBytes - 4 + length) != Load32(h)) return "checksum mismatch";
  return nullptr;
}

enum class Search { kNone, kFound, kTooCostly };

// Looks for an intact marker of this segment (`stamp`) at an 8-aligned offset
// past `from` whose group began at `minStart` or later. Only markers are looked
// for: their header is exact, so a candidate costs one 28-byte checksum, at most
// one per 16 bytes, and the checksummed bytes come out of `budget`, so crafted
// bytes cannot make this slow; past it the answer is kTooCostly, which callers
// treat as corruption.
Search FindMarker(const uint8_t* p, size_t size, size_t from, uint64_t stamp, uint64_t minStart, uint64_t* budget) {
  for (size_t off = Align8(from + 1); off + kMarkerBytes <= size; off += 8) {
    const uint8_t* h = p + off;
    if (h[8] != kKindMarker || Load32(h + 4) != kMarkerPayload || h[9] != 0 || LoadStamp(h) != stamp) continue;
    if (*budget < kMarkerBytes - 4) return Search::kTooCostly;
    *budget -= kMarkerBytes - 4;
    if (Crc32c(h + 4, kMarkerBytes - 4) == Load32(h) && Load64(h + kHeaderBytes) >= minStart) return Search::kFound;
  }
  return Search::kNone;
}

// Was the data at `damage` synced before something else was written? A marker
// names where its group began: the offset of the writer's last sync. The writer
// writes a group only after the group before it was synced, so an intact marker
// after the damage whose group began after the damage proves the damaged bytes
// were synced (and acknowledged): corruption. A marker of the damaged group
// itself proves nothing: an unsynced group's pages reach the disk in any order.
Search SyncedAfter(const uint8_t* p, size_t size, size_t damage, uint64_t stamp, uint64_t* budget) {
  return FindMarker(p, size, damage, stamp, damage + 1, budget);
}

// A segment's bytes: mapped for the WAL's own open, which holds the directory's lock, so nothing
// changes the file under it; copied for a read-only scan, as of a running node's directory. That
// node truncates the segments it releases a few MiB at a time: a mapping read past the new end
// is SIGBUS, a copy is a short read.
struct Mapped {
  int fd = -1;
  uint8_t* data = nullptr;
  size_t size = 0;
  std::vector<uint8_t> copy;
  ~Mapped() {
    if (data != nullptr && copy.empty()) munmap(data, size);
    if (fd >= 0) close(fd);
  }
};

// `leftovers` receives the unused prepared and released segments, for the caller to remove
// once the scan has found the WAL readable.
std::vector<ScannedSegment> ListSegments(const std::string& dir, std::vector<std::string>* leftovers) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) throw IoError("open directory", dir, errno);
  std::vector<ScannedSegment> segs;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    uint64_t seq, first, stamp;
    if (ParseSegmentName(name, &seq, &first, &stamp)) {
      segs.push_back({seq, first, stamp, name, 0, 0, {}, false});
    } else if (IsRecycledName(name)) {
      // Kept for reuse; the writer takes it over (Writer::AdoptRecycled). Never part of the log.
    } else if (name == kPreallocName || name == kTailTmpName || IsReleasedName(name)) {
      // An unused prepared file, or a released segment not yet removed, from an
      // earlier run: never part of the log. One that cannot be removed (a directory put
      // there) would fail the first rotation, long after the open: refused now, and by a
      // read-only scan as the open would refuse it (raftlog inspect says what the open refuses).
      const std::string path = JoinPath(dir, name);
      const auto notAFile = [&]() {
        closedir(d);
        return WalError(WalCode::kCorrupt, path + " is not a regular file, so not a prepared or released segment", path, -1);
      };
      struct stat st;
      if (lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) throw notAFile();
      leftovers->push_back(path);
    } else if (name != "." && name != ".." && !IsWalName(name)) {
      closedir(d);
      throw UnexpectedFile(dir, name);
    }
  }
  closedir(d);
  std::sort(segs.begin(), segs.end(), [](const ScannedSegment& x, const ScannedSegment& y) { return x.seq < y.seq; });
  for (size_t i = 1; i < segs.size(); i++)
    if (segs[i].seq != segs[i - 1].seq + 1)
      throw WalError(WalCode::kCorrupt, "segment sequence has a gap: " + segs[i - 1].name + " is followed by " + segs[i].name,
                     JoinPath(dir, segs[i].name), 0);
  return segs;
}

}  // namespace

ScanResult ScanDir(const std::string& dir, bool repair, const std::string& keepName, uint64_t keepEnd) {
  ScanResult out;
  std::vector<std::string> leftovers;
  out.segments = ListSegments(dir, &leftovers);
  for (size_t si = 0; si < out.segments.size(); si++) {
    ScannedSegment& seg = out.segments[si];
    bool last = si + 1 == out.segments.size();
    std::string path = JoinPath(dir, seg.name);
    Mapped m;
    // Not through a link (appends would go to a file elsewhere), and without blocking on a
    // FIFO put in a segment's place: only a regular file can be a segment.
    m.fd = open(path.c_str(), (repair && last ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (m.fd < 0 && errno == ELOOP) throw WalError(WalCode::kCorrupt, path + " is a symbolic link, not a segment file", path, -1);
    // Only the last segment is opened for writing, which a directory refuses before fstat can tell.
    if (m.fd < 0 && errno == EISDIR) throw WalError(WalCode::kCorrupt, path + " is not a regular file, so not a segment file", path, -1);
    if (m.fd < 0) throw IoError("open", path, errno);
    struct stat st;
    if (fstat(m.fd, &st) != 0) throw IoError("stat", path, errno);
    if (!S_ISREG(st.st_mode)) throw WalError(WalCode::kCorrupt, path + " is not a regular file, so not a segment file", path, -1);
    // Before anything is mapped or read: damage, or a hostile file under a segment's name,
    // must not make open cost a file's size in time and page cache.
    if (static_cast<uint64_t>(st.st_size) > kMaxSegmentFileBytes)
      throw WalError(WalCode::kCorrupt,
                     path + " is " + std::to_string(st.st_size) + " bytes, more than any segment file the WAL writes (at most " +
                         std::to_string(kMaxSegmentFileBytes) + " bytes)",
                     path, -1);
    m.size = static_cast<size_t>(st.st_size);
    seg.size = m.size;
    if (m.size > 0 && repair) {
      void* addr = mmap(nullptr, m.size, PROT_READ, MAP_PRIVATE, m.fd, 0);
      if (addr == MAP_FAILED) throw IoError("mmap", path, errno);
      m.data = static_cast<uint8_t*>(addr);
      madvise(addr, m.size, MADV_SEQUENTIAL);
    } else if (m.size > 0) {
      m.copy.resize(m.size);
      size_t got = 0;
      while (got < m.size) {
        ssize_t n = pread(m.fd, m.copy.data() + got, m.size - got, static_cast<off_t>(got));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw IoError("read", path, errno);
        if (n == 0)
          throw WalError(WalCode::kIo,
                         path + " shrank from " + std::to_string(m.size) + " to " + std::to_string(got) +
                             " bytes or fewer while it was read: a node writing this WAL released it meanwhile",
                         path, -1);
        got += static_cast<size_t>(n);
      }
      m.data = m.copy.data();
    }
    const uint8_t* p = m.data;
    size_t off = 0;
    const char* damage = nullptr;
    size_t recordsBefore = out.records.size();
    // The open group (records since the writer's last sync, which always falls at the
    // segment's start or just after a marker) and the records since the last marker,
    // where the next group starts if the writer synced there.
    MarkState group, sinceMarker;
    const uint64_t stamp = seg.stamp;
    // Bytes checksummed in the search for markers past the end or past damage.
    const uint64_t searchLimit = 2 * static_cast<uint64_t>(m.size);
    uint64_t budget = searchLimit;
    while (off < m.size) {
      if (AllZero(p + off, std::min<size_t>(kHeaderBytes, m.size - off))) {
        if (off == 0) {
          damage = "missing segment header";
        } else if (stamp == 0) {
          // Format 2: a segment is all zeros past its records.
          if (!AllZero(p + off, m.size - off)) damage = "zero header followed by nonzero bytes";
        } else {
          // Format 3: past the end lie zeros or an earlier life's records, but no marker of this one.
          // Searched to the file's end, which only the bound on its size limits: a zeroed span
          // inside the records can be of any length, so a later group's marker can lie anywhere.
          Search found = FindMarker(p, m.size, off, stamp, 0, &budget);
          if (found == Search::kFound) damage = "zero header followed by a marker of this segment";
          if (found == Search::kTooCostly) damage = "zero header followed by too many candidate records to check";
        }
        break;
      }
      damage = CheckRecord(p, m.size, off, stamp);
      if (damage != nullptr) break;
      const uint8_t* h = p + off;
      uint32_t length = Load32(h + 4);
      const uint8_t* body = h + kHeaderBytes;
      uint8_t kind = h[8];
      if ((kind == kKindSegment) != (off == 0)) {
        damage = off == 0 ? "missing segment header" : "segment header in the middle of a segment";
        break;
      }
      if (kind == kKindSegment) {
        // This header is whole (its checksum holds, with the stamp of the segment's name): what
        // it says was written so, never torn. Cut off as a torn write, a segment of a newer
        // format would be destroyed by the version that cannot read it.
        const uint64_t magic = Load64(body);
        constexpr uint64_t kFamily = 0x00ffffffffffffffull;  // "raftwal", whatever the digit
        if (magic != kSegmentMagic && magic != kSegmentMagicV2 && (magic & kFamily) == (kSegmentMagic & kFamily))
          throw WalError(WalCode::kVersion,
                         path + " was written in WAL format " + std::string(1, static_cast<char>(magic >> 56)) + ", which this version does not read", path, 0);
        if (magic != (stamp != 0 ? kSegmentMagic : kSegmentMagicV2) || Load64(body + 8) != seg.seq || Load64(body + 16) != seg.firstIndex)
          throw WalError(WalCode::kCorrupt, "corrupt WAL record in " + path + " at offset 0: segment header does not match the file name", path, 0);
      } else if (kind == kKindMarker) {
        MarkState said{Load64(body), Load32(body + 8), Load32(body + 12)};
        auto same = [&](const MarkState& x) { return said.start == x.start && said.records == x.records && said.crc == x.crc; };
        if (same(sinceMarker)) {
          group = sinceMarker;  // the writer synced at the previous marker: a new group began there
        } else if (!same(group)) {
          damage = "marker does not match the records before it";
          break;
        }
      } else {
        ScannedRecord r{kind, static_cast<uint32_t>(si), off, length, h[9], Load64(body), Load64(body + 8), 0};
        if (kind == kKindHardState) r.c = Load64(body + 16);
        if (kind == kKindSnapshot) {
          // Only the last marker's meta is kept: replay needs no other, and a copy of each
          // would let a segment of markers cost many times its size.
          if (out.metas.empty()) out.metas.emplace_back();
          out.metas[0].assign(body + kSnapshotPrefix, body + length);
        }
        out.records.push_back(r);
      }
      off += Align8(kHeaderBytes + length);
      if (kind == kKindMarker) {
        sinceMarker = MarkState{off, 0, 0};
      } else {
        for (MarkState* x : {&group, &sinceMarker}) {
          x->records++;
          x->crc = Crc32cExtend(x->crc, h, 4);
        }
      }
    }
    if (off == 0 && damage == nullptr) damage = "missing segment header";
    seg.end = off;
    seg.mark = group;
    seg.atMarker = off > 0 && sinceMarker.start == off;
    if (damage == nullptr) {
      out.searchBytes += searchLimit - budget;
      continue;
    }
    // Damage in the last segment that no later group's marker shows to have been
    // synced can be a write the process or the machine died in the middle of (the
    // pages of a write that was never synced may reach the disk in any order): it
    // was never acknowledged. Anything else is damage to data that was.
    bool torn = false;
    const char* why = "";
    if (off == 0 && si == 0) {
      // Only a segment after another can lack its header: the first one a WAL holds had it
      // synced before anything else (segment 1 with its directory, a later one before the
      // segments before it were released). Cut off, the WAL would hold no log at all.
      why = " (the first segment a WAL holds always has its header)";
    } else if (last && seg.name == keepName && off < keepEnd) {
      why = " (TAIL records a group synced in this segment up to a later offset)";
    } else if (last) {
      Search found = SyncedAfter(p, m.size, off, stamp, &budget);
      torn = found == Search::kNone;
      out.searchBytes += searchLimit - budget;
      why = found == Search::kFound ? " (an intact marker of a later group follows, so these bytes had been synced)"
                                    : " (too many candidate records follow to tell whether this is a torn write)";
    }
    if (!torn)
      throw WalError(WalCode::kCorrupt,
                     std::string("corrupt WAL record in ") + path + " at offset " + std::to_string(off) + ": " + damage + why, path,
                     static_cast<int64_t>(off));
    size_t end = m.size;
    while (end > off && p[end - 1] == 0) end--;
    out.torn = true;
    out.tornTail = {path, off, end - off};
    out.records.resize(off == 0 ? recordsBefore : out.records.size());
    if (!repair) continue;
    if (off == 0) {
      // Not even the header was written: the segment never held anything.
      if (unlink(path.c_str()) != 0) throw IoError("unlink", path, errno);
      SyncDir(dir);
      out.segments.pop_back();
      continue;
    }
    // A chunk at a time: the span can reach the file's end (a reused segment's earlier life,
    // or a file grown by damage), and its size is no bound on what open may allocate.
    const std::vector<uint8_t> zeros(std::min<size_t>(end - off, 1 << 20), 0);
    for (size_t done = 0; done < end - off;) {
      ssize_t n = pwrite(m.fd, zeros.data(), std::min(zeros.size(), end - off - done), static_cast<off_t>(off + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw IoError("zero torn tail of", path, errno);
      done += static_cast<size_t>(n);
    }
    if (fdatasync(m.fd) != 0) throw IoError("fdatasync", path, errno);
  }
  // Removed only now: a WAL this version refuses (a newer format's, say) is left as it was.
  if (repair && !leftovers.empty()) {
    for (const std::string& path : leftovers) {
      if (unlink(path.c_str()) == 0 || errno == ENOENT) continue;
      if (errno == EISDIR)
        throw WalError(WalCode::kCorrupt, path + " is not a regular file, so not a prepared or released segment", path, -1);
      throw IoError("unlink", path, errno);
    }
    SyncDir(dir);
  }
  return out;
}

}  // namespace raftlog
