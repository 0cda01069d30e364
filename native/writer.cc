#include "platform.h"
#include "writer.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "crc32c.h"
#include "record.h"
#include "segment.h"
#include "wal_error.h"

namespace raftlog {

Writer::Writer(WriterOptions options, uint64_t lastSeq, const std::string& lastName, MarkState mark, uint64_t end, bool atMarker,
               Report report)
    : options_(std::move(options)), report_(std::move(report)), mark_(mark) {
  dirFd_ = open(options_.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirFd_ < 0) throw IoError("open directory", options_.dir, errno);
  if (lastSeq != 0) {
    std::string path = JoinPath(options_.dir, lastName);
    fd_ = open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd_ < 0) {
      int err = errno;
      close(dirFd_);
      throw IoError("open", path, err);
    }
    struct stat st;
    if (fstat(fd_, &st) != 0) {
      int err = errno;
      close(fd_);
      close(dirFd_);
      throw IoError("stat", path, err);
    }
    prepared_ = static_cast<uint64_t>(st.st_size);
    direct_ = TryDirect(fd_);
    uint64_t first = 0;
    ParseSegmentName(lastName, &submitSeq_, &first, &submitStamp_);  // a format 2 segment goes on without stamps
    seq_ = lastSeq;
    name_ = lastName;
    end_ = end;
    // Records the scan found in an open group may be unsynced (a crash left them in the page
    // cache). Where they end with a marker, the first group syncs them too, which begins a
    // group there: a close then seals with a marker of an empty group, and the next open,
    // writing nothing, has nothing to seal (its seals would grow the segment with every
    // restart).
    dirty_ = atMarker && mark.records > 0;
  }
  try {
    AdoptRecycled();
  } catch (...) {
    if (fd_ >= 0) close(fd_);
    close(dirFd_);
    throw;
  }
  preallocWanted_ = true;
  try {
    preallocThread_ = std::thread([this] { PreallocLoop(); });
    thread_ = std::thread([this] { Run(); });
  } catch (const std::exception& e) {
    // No destructor runs for a half-built writer: join what started, close the fds.
    Stop();
    throw WalError(WalCode::kIo, std::string("cannot start the WAL threads: ") + e.what());
  }
}

Writer::~Writer() { Stop(); }

// Stamps every record of the job with its segment's stamp and checksums all but
// the markers, whose payload the writer fills in. Here, on the submitting thread,
// so that the writer thread's turn between two fdatasyncs is only the write.
void Writer::Seal(Job& job) {
  for (const Chunk& c : job.chunks) {
    uint8_t* p = c.data + c.begin;
    uint8_t* end = c.data + c.end;
    if (c.seq != submitSeq_) {
      // A new segment: its first record is its header, stamped by the caller.
      if (c.seq != submitSeq_ + 1 || end - p < kHeaderBytes || p[8] != kKindSegment || LoadStamp(p) == 0)
        throw WalError(WalCode::kIo, "internal error: segment " + std::to_string(c.seq) + " does not start with a stamped header");
      submitSeq_ = c.seq;
      submitStamp_ = LoadStamp(p);
    }
    while (p < end) {
      // Checked before the record is touched: a record read past its chunk would be
      // checksummed, stamped and written from memory the job does not own.
      const auto left = static_cast<uint64_t>(end - p);
      if (left < kHeaderBytes || Align8(kHeaderBytes + uint64_t(Load32(p + 4))) > left)
        throw WalError(WalCode::kIo, "internal error: a record of segment " + std::to_string(c.seq) + " runs past the end of its chunk");
      uint32_t length = Load32(p + 4);
      StoreStamp(p, submitStamp_);
      if (p[8] != kKindMarker) Store32(p, Crc32c(p + 4, kHeaderBytes - 4 + length));
      p += Align8(kHeaderBytes + length);
    }
  }
}

int64_t Writer::Submit(Job job, bool mayInline) {
  if (job.type == Job::kWrite) Seal(job);
  std::unique_lock<std::mutex> lock(mu_);
  job.id = nextId_++;
  const auto id = static_cast<int64_t>(job.id);
  const bool idle = !busy_ && queue_.empty() && !stopping_;
  // Busy only zeroing ahead, which an inline job starts: that says nothing about the caller.
  const bool zeroing = !idle && preparing_ && queue_.empty();
  // Nor does the job right after one that found it so, submitted before that one is
  // durable (a follower sent its next entries once the other follower answered), as long
  // as nothing else waits: otherwise every step of zeroing would start the streak over.
  const bool behindZeroing = !idle && job.id == queuedWhileZeroing_ + 1 && queue_.size() <= 1;
  if (idle) {
    idleStreak_ = std::min(idleStreak_ + 1, kInlineIdleStreak + 1);
    if (probed_) probeEvery_ = std::min(probeEvery_ * 2, kInlineProbeMax);  // the caller waited for the look
  } else if (!zeroing && !behindZeroing) {
    idleStreak_ = 0;
    probeEvery_ = kInlineProbe;
  }
  if (zeroing) queuedWhileZeroing_ = job.id;
  probed_ = false;
  if (mayInline && idle && job.type == Job::kWrite && idleStreak_ > kInlineIdleStreak && commitAvgNs_.load() <= kInlineMaxCommitNs) {
    size_t bytes = 0;
    for (const Chunk& c : job.chunks) bytes += c.end - c.begin;
    if (bytes <= kInlineMaxBytes) {
      if (++inlineRun_ >= probeEvery_) {
        probed_ = true;  // to the thread, to look
      } else {
        busy_ = true;
        lock.unlock();
        switch (Inline(job)) {
          case InlineResult::kDurable:
            return -id;
          case InlineResult::kFailed:
            return id;  // reported like a queued job
          case InlineResult::kNotRun:
            break;
        }
        lock.lock();
        busy_ = false;
      }
    }
  }
  inlineRun_ = 0;
  queue_.push_back(std::move(job));
  // Woken while this thread still held the lock, the writer would only block on it again.
  lock.unlock();
  cv_.notify_one();
  return id;
}

// Called busy_ with the writer thread idle: runs the job here unless it needs
// what only the writer thread does (a rotation) or the writer has failed.
// Clears busy_ unless it returns kNotRun.
Writer::InlineResult Writer::Inline(Job& job) {
  if (failed_ || fd_ < 0) return InlineResult::kNotRun;
  for (const Chunk& c : job.chunks)
    if (c.seq != seq_) return InlineResult::kNotRun;
  const uint64_t before = bytes_.load();
  Guarded([&] {
    Execute(job);
    FlushAndSync();
  });
  NoteGroup(bytes_.load() - before);
  groups_++;
  inlineGroups_++;
  const Ended end = EndBusy(true);
  if (!end.failed) return InlineResult::kDurable;
  try {
    report_(job.id, &end.error);
  } catch (...) {
    // Only an allocation can fail here; the next group reports this failure too.
  }
  return InlineResult::kFailed;
}

// Ends a turn of busy_, reading first what its caller needs of the state it owned.
// `wakeToZero`: the writer thread is elsewhere; ask it, once, to zero ahead if needed
// (it clears the request when it starts).
Writer::Ended Writer::EndBusy(bool wakeToZero) {
  Ended end{failed_, failed_ ? error_ : std::string(), !failed_ && NeedsZeros()};
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    busy_ = false;
    wake = wakeToZero && end.zero && !prepareWanted_ && !preparing_;
    if (wake) prepareWanted_ = true;
  }
  if (wake) cv_.notify_one();
  return end;
}

void Writer::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  {
    std::lock_guard<std::mutex> lock(pmu_);
  }
  pcv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (preallocThread_.joinable()) preallocThread_.join();
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  if (preallocFd_ >= 0) close(preallocFd_);
  preallocFd_ = -1;
  if (dirFd_ >= 0) close(dirFd_);
  dirFd_ = -1;
}

WriterStats Writer::Stats() const {
  WriterStats s{writes_.load(), fsyncs_.load(), bytes_.load(), groups_.load(), inlineGroups_.load(),
                segmentsCreated_.load(), segmentsRemoved_.load(), segmentsRecycled_.load(), stagingBytes_.load(), {}, fsyncNanos_.load()};
  for (int i = 0; i < kFsyncBuckets; i++) s.fsyncBuckets[i] = fsyncBuckets_[i].load();
  return s;
}

// Runs work on the writer thread; a failure fails the WAL. Anything besides a
// WalError (bad_alloc, system_error) fails it the same way: escaping this
// thread would terminate the process.
template <typename F>
void Writer::Guarded(F&& work) {
  try {
    work();
  } catch (const WalError& e) {
    failed_ = true;
    error_ = e.what();
  } catch (const std::exception& e) {
    failed_ = true;
    error_ = std::string("internal error on the WAL writer thread: ") + e.what();
  }
}

void Writer::Run() {
  std::deque<Job> group;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || (!busy_ && (!queue_.empty() || prepareWanted_)); });
      if (stopping_) return;
      prepareWanted_ = false;
      if (queue_.empty()) {
        lock.unlock();
        PrepareAhead();
        continue;
      }
      group.swap(queue_);
      busy_ = true;
    }
    bool closing = false;
    for (Job& job : group) closing = closing || job.type == Job::kClose;
    const uint64_t before = bytes_.load();
    if (!failed_) {
      Guarded([&] {
        for (Job& job : group) Execute(job);
        FlushAndSync();
      });
    }
    NoteGroup(bytes_.load() - before);
    groups_++;
    const Ended end = EndBusy(false);
    try {
      report_(group.back().id, end.failed ? &end.error : nullptr);
    } catch (...) {
      // Only an allocation can fail here; the next group reports these ids too.
    }
    group.clear();
    if (closing) return;
    if (end.zero) PrepareAhead();
  }
}

bool Writer::Idle() {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.empty() && !stopping_;
}

void Writer::NoteGroup(uint64_t bytes) {
  if (bytes == 0) return;  // a release or a close: nothing about the appends' size
  const uint64_t avg = groupBytesAvg_.load();
  groupBytesAvg_ = avg - avg / 8 + bytes / 8;
}

bool Writer::SmallGroups() const { return groupBytesAvg_.load() <= kEagerZeroMaxGroupBytes; }

// With small groups, idle now. With large ones, idle for a while, not just
// between a report and the next job: with many appends in flight the queue is
// often empty for the moment the event loop takes to answer a report, and
// zeroing then would write every byte twice. A job run inline counts too,
// though it does not wake this wait.
// True: quiet, and now busy_ (the caller clears it).
bool Writer::Quiet() {
  std::unique_lock<std::mutex> lock(mu_);
  const uint64_t seen = nextId_;
  if (!SmallGroups() &&
      cv_.wait_for(lock, std::chrono::milliseconds(kQuietMs), [this] { return !queue_.empty() || stopping_.load(); }))
    return false;
  if (busy_ || !queue_.empty() || stopping_ || nextId_ != seen) return false;
  busy_ = true;
  return true;
}

// Under busy_.
bool Writer::NeedsZeros() const {
  if (options_.prealloc != Prealloc::kZeros || fd_ < 0) return false;
  uint64_t prepared = std::max(prepared_, end_);
  return prepared < options_.segmentBytes && prepared - end_ < step_ / 2;
}

// Zeroes the current segment ahead of the write position while no job waits,
// so that the coming fdatasyncs write into blocks that are allocated and
// initialized: no extent or size change for the journal. Only in idle time:
// under a steady load the file grows with the data instead (one size change
// per group commit, amortized over a large group), and no byte is written
// twice. The zeros lie past every record, where replay reads the end of the
// log, and are synced before the writer relies on them: an unsynced zero
// page would otherwise be flushed by the next data sync.
void Writer::PrepareAhead() {
  SetPreparing(true);
  while (Quiet()) {
    bool more = false;
    if (!failed_ && NeedsZeros()) Guarded([&] { more = ZeroStep(); });
    EndBusy(false);
    if (!more) break;
  }
  SetPreparing(false);
}

void Writer::SetPreparing(bool on) {
  std::lock_guard<std::mutex> lock(mu_);
  preparing_ = on;
}

// One step of PrepareAhead, under busy_. True: the step is zeroed and synced.
bool Writer::ZeroStep() {
  if (prepared_ < end_) prepared_ = end_;
  uint64_t stop = std::min(prepared_ + step_, options_.segmentBytes);
  if (direct_) {
    // Whole blocks: the rest of the block holding end_ was zeroed by the last data write.
    prepared_ = BlockCeil(prepared_);
    stop = BlockCeil(stop);
  }
  if (zeros_.data() == nullptr) memset(zeros_.Reserve(kFirstStep), 0, kFirstStep);
  // In pieces, so that a job arriving meanwhile waits for one piece, not a step.
  while (prepared_ < stop) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(kFirstStep, stop - prepared_));
    ssize_t w = pwrite(fd_, zeros_.data(), n, static_cast<off_t>(prepared_));
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno == EINVAL && direct_) {
      SegmentThroughPageCache(strerror(errno));
      continue;  // the same zeros through the page cache
    }
    if (w < 0) {
      // Nothing is lost (no record lies here): a full disk fails the next
      // data write, not the preparation.
      Notice("could not zero " + JoinPath(options_.dir, name_) + " ahead of the write position: " + strerror(errno), 0, 0);
      prepared_ = options_.segmentBytes;
      return false;
    }
    prepared_ += static_cast<uint64_t>(w);
    if (prepared_ < stop && !Idle()) return false;  // the next data sync flushes the zeros written so far
  }
  if (options_.sync && fdatasync(fd_) != 0) throw IoError("fdatasync", JoinPath(options_.dir, name_), errno);
  // Steps grow while the writer has time for them; with small groups a long step
  // would hold up a commit that arrives during its sync.
  step_ = SmallGroups() ? kFirstStep : std::min(step_ * 2, kMaxStep);
  return true;
}

void Writer::Execute(Job& job) {
  switch (job.type) {
    case Job::kWrite:
      for (const Chunk& c : job.chunks) Write(job, c);
      break;
    case Job::kRelease:
      // The snapshot marker that allows this release was queued before it:
      // make it durable before anything is removed.
      FlushAndSync();
      {
        // Renamed out of the log here, removed by the preparing thread: removing a
        // segment file frees its blocks, which on a file system mounted with
        // `discard` takes about 20 ms per 64 MiB, and every append would wait for it.
        // A segment an earlier release could not rename is tried again first. Left in the
        // log it holds only entries below the snapshot marker, as after a crash before the
        // release: nothing reads it, and an open takes it back as releasable.
        std::vector<std::string> names;
        names.swap(unreleased_);
        names.insert(names.end(), job.unlink.begin(), job.unlink.end());
        std::vector<std::string> doomed;
        for (const std::string& name : names) {
          std::string path = JoinPath(options_.dir, name);
          if (Recycle(path)) {
            segmentsRemoved_++;
            continue;
          }
          std::string to = path + kReleasedSuffix;
          if (rename(path.c_str(), to.c_str()) == 0) {
            segmentsRemoved_++;
            doomed.push_back(std::move(to));
          } else if (errno == ENOENT) {
            segmentsRemoved_++;
          } else {
            int err = errno;
            unreleased_.push_back(name);
            Notice("could not release the segment " + path + ": " + strerror(err) + "; the next release tries again", 0, 0);
          }
        }
        if (!names.empty() && options_.sync) SyncDirFd(dirFd_, options_.dir);
        if (!doomed.empty()) {
          {
            std::lock_guard<std::mutex> lock(pmu_);
            for (std::string& path : doomed) released_.push_back(std::move(path));
          }
          pcv_.notify_all();
        }
      }
      break;
    case Job::kFence:
    case Job::kClose:
      if (options_.lock != nullptr && options_.lock->Verify()) Notice("re-created the deleted lock file", 0, 0);
      break;
  }
}

void Writer::Write(Job& job, const Chunk& c) {
  if (c.seq != seq_) {
    FlushAndSync();
    Rotate(c.seq, c.firstIndex, LoadStamp(c.data + c.begin));  // its header, checked by Seal
  }
  uint8_t* begin = c.data + c.begin;
  uint8_t* end = c.data + c.end;
  for (uint8_t* p = begin; p < end;) {
    uint32_t length = Load32(p + 4);
    uint64_t size = Align8(kHeaderBytes + length);
    bool marker = p[8] == kKindMarker;
    if (marker) {
      // The job's closing marker (its slot reserved by the caller): it names every record
      // written since the last sync, so it verifies only if all of them reached the disk.
      Store64(p + kHeaderBytes, mark_.start);
      Store32(p + kHeaderBytes + 8, mark_.records);
      Store32(p + kHeaderBytes + 12, mark_.crc);
      Store32(p, Crc32c(p + 4, kHeaderBytes - 4 + length));
    } else {
      mark_.records++;
      mark_.crc = Crc32cExtend(mark_.crc, p, 4);
    }
    p += size;
  }
  end_ = c.offset + (c.end - c.begin);
  size_t n = c.end - c.begin;
  if (!iov_.empty() && (iovOffset_ + iovBytes_ != c.offset || iov_.size() >= IOV_MAX)) Flush();
  if (iov_.empty()) iovOffset_ = c.offset;
  iovBytes_ += n;
  // Appends packed one after another in a slab are one piece of memory: one iovec, whose
  // blocks a direct write takes from there, not a block to stage wherever two meet.
  if (!iov_.empty() && static_cast<uint8_t*>(iov_.back().iov_base) + iov_.back().iov_len == begin) {
    iov_.back().iov_len += n;
    return;
  }
  iov_.push_back({begin, n});
}

void Writer::Flush() {
  if (direct_) return DirectFlush();
  size_t first = 0;
  uint64_t offset = iovOffset_;
  while (first < iov_.size()) {
    int count = static_cast<int>(std::min<size_t>(iov_.size() - first, IOV_MAX));
    ssize_t n = pwritev(fd_, &iov_[first], count, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw IoError("write", JoinPath(options_.dir, name_), errno);
    writes_++;
    bytes_ += static_cast<uint64_t>(n);
    offset += static_cast<uint64_t>(n);
    dirty_ = true;
    // Skip what was written; a short write resumes inside an iovec.
    size_t left = static_cast<size_t>(n);
    while (first < iov_.size() && left >= iov_[first].iov_len) left -= iov_[first++].iov_len;
    if (left > 0) {
      iov_[first].iov_base = static_cast<uint8_t*>(iov_[first].iov_base) + left;
      iov_[first].iov_len -= left;
    }
  }
  iov_.clear();
  iovBytes_ = 0;
}

// The pending iovecs as whole blocks: the start of the first block as this
// segment holds it, the iovecs, and zeros to the end of the last block (a direct
// write wants every piece of memory, offset and length aligned). A block that
// lies inside one iovec whose memory is aligned as the file is (the TypeScript
// side packs its slabs so) is written from there; the others (where the group
// starts and ends, where two iovecs meet, an iovec out of phase) are assembled
// in the aligned staging buffer, kStageBytes at a time.
void Writer::DirectFlush() {
  uint64_t length = 0;  // iovBytes_ and the zero header Terminate may have added
  for (const iovec& v : iov_) length += v.iov_len;
  const uint64_t begin = BlockFloor(iovOffset_);
  const uint64_t stop = BlockCeil(iovOffset_ + length);
  pieces_.clear();
  uint64_t staged = 0, cursor = begin, at = iovOffset_;
  for (const iovec& v : iov_) {
    const uint64_t first = BlockCeil(at), last = BlockFloor(at + v.iov_len);
    const uint8_t* from = last > first ? static_cast<const uint8_t*>(v.iov_base) + (first - at) : nullptr;
    if (from != nullptr && reinterpret_cast<uintptr_t>(from) % kDirectBlock == 0) {
      if (first > cursor) pieces_.push_back({cursor, first - cursor, nullptr});
      staged += first - cursor;
      pieces_.push_back({first, last - first, from});
      cursor = last;
    }
    at += v.iov_len;
  }
  if (stop > cursor) pieces_.push_back({cursor, stop - cursor, nullptr});
  staged += stop - cursor;

  const uint64_t room = std::min(staged, kStageBytes);
  uint8_t* buf = stage_.Reserve(room);
  uint64_t used = 0, written = begin, planned = 0;
  gatherIov_ = 0;
  gatherAt_ = iovOffset_;
  blocks_.clear();
  for (const Piece& p : pieces_) {
    if (p.from != nullptr) {
      blocks_.push_back({const_cast<uint8_t*>(p.from), static_cast<size_t>(p.n)});
      planned += p.n;
      continue;
    }
    for (uint64_t done = 0; done < p.n;) {
      if (used == room) {  // the staging buffer is full: write what it holds, then reuse it
        WriteBlocks(written, planned);
        written += planned;
        planned = used = 0;
      }
      const uint64_t n = std::min(p.n - done, room - used);
      Gather(p.at + done, n, buf + used);
      blocks_.push_back({buf + used, static_cast<size_t>(n)});
      used += n;
      planned += n;
      done += n;
    }
  }
  // The next group rewrites the last block: keep it (LoadBlock), before the write can drop to the page cache.
  const iovec& end = blocks_.back();
  memcpy(tail_.Reserve(kDirectBlock), static_cast<uint8_t*>(end.iov_base) + end.iov_len - kDirectBlock, kDirectBlock);
  WriteBlocks(written, planned);
  bytes_ += length;
  dirty_ = true;
  tailStart_ = direct_ ? stop - kDirectBlock : kNoTail;
  stagingBytes_ = stage_.size();
  iov_.clear();
  iovBytes_ = 0;
}

// Bytes [at, at + n) of the segment as the pending write leaves them, into `out`:
// the first block's start as the segment holds it, the iovecs, zeros past them.
// Called in order of `at`: it reads iov_ from where the last call left off.
void Writer::Gather(uint64_t at, uint64_t n, uint8_t* out) {
  uint64_t pos = at;
  const uint64_t stop = at + n;
  if (pos < iovOffset_) {  // the group's first block only
    LoadBlock(pos, out);
    pos = iovOffset_;
  }
  while (pos < stop && gatherIov_ < iov_.size()) {
    const iovec& v = iov_[gatherIov_];
    if (gatherAt_ + v.iov_len <= pos) {
      gatherAt_ += v.iov_len;
      gatherIov_++;
      continue;
    }
    const uint64_t k = std::min<uint64_t>(gatherAt_ + v.iov_len, stop) - pos;
    memcpy(out + (pos - at), static_cast<const uint8_t*>(v.iov_base) + (pos - gatherAt_), static_cast<size_t>(k));
    pos += k;
  }
  memset(out + (pos - at), 0, static_cast<size_t>(stop - pos));
}

// Writes blocks_, n bytes of whole blocks, at `at`: directly, or through the page
// cache once a direct write was refused (then from this call on).
void Writer::WriteBlocks(uint64_t at, uint64_t n) {
  size_t first = 0;
  for (uint64_t done = 0; done < n;) {
    const int count = static_cast<int>(std::min<size_t>(blocks_.size() - first, IOV_MAX));
    ssize_t w = pwritev(fd_, &blocks_[first], count, static_cast<off_t>(at + done));
    if (w < 0 && errno == EINTR) continue;
    if (direct_ && ((w < 0 && errno == EINVAL) || (w >= 0 && BlockFloor(static_cast<uint64_t>(w)) == 0))) {
      // The device wants a larger alignment, or made no whole block of progress:
      // the rest through the page cache, as on a file system without direct I/O.
      SegmentThroughPageCache(w < 0 ? strerror(errno) : "short write");
      continue;
    }
    if (w < 0) throw IoError("write", JoinPath(options_.dir, name_), errno);
    writes_++;
    // A short direct write resumes at its last whole block.
    size_t left = static_cast<size_t>(direct_ ? BlockFloor(static_cast<uint64_t>(w)) : static_cast<uint64_t>(w));
    done += left;
    while (first < blocks_.size() && left >= blocks_[first].iov_len) left -= blocks_[first++].iov_len;
    if (left > 0) {
      blocks_[first].iov_base = static_cast<uint8_t*>(blocks_[first].iov_base) + left;
      blocks_[first].iov_len -= left;
    }
  }
  blocks_.clear();
}

// The block at `at` as this segment holds it: from the copy of the last block
// written, else from the file (a segment reopened for appending). Past the
// file's end, zeros.
void Writer::LoadBlock(uint64_t at, uint8_t* out) {
  if (at == tailStart_) {
    memcpy(out, tail_.data(), kDirectBlock);
    return;
  }
  uint64_t done = 0;
  while (done < kDirectBlock) {
    ssize_t n = pread(fd_, out + done, static_cast<size_t>(kDirectBlock - done), static_cast<off_t>(at + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw IoError("read", JoinPath(options_.dir, name_), errno);
    if (n == 0) break;
    done += static_cast<uint64_t>(n);
  }
  memset(out + done, 0, static_cast<size_t>(kDirectBlock - done));
}

// A direct write failed where a write through the page cache may not (a device
// that wants a larger alignment): says so once, and writes this WAL's segments
// through the page cache from now on.
void Writer::RefuseDirect(int fd, const char* why) {
  DropDirect(fd);
  if (!directRefused_.exchange(true))
    Notice(std::string("direct writes to ") + options_.dir + " failed (" + why + "); writing through the page cache from now on", 0, 0);
}

// The current segment, from now on.
void Writer::SegmentThroughPageCache(const char* why) {
  RefuseDirect(fd_, why);
  direct_ = false;
  tailStart_ = kNoTail;
}

bool Writer::TryDirectUnlessRefused(int fd) { return !directRefused_ && TryDirect(fd); }

// Ends what is about to be written with a zero header (or as much of one as the
// segment has room for), in the same write: the end of the records, in a file
// whose bytes past it may be an earlier life's. Not part of end_: the next group
// overwrites it.
void Writer::Terminate() {
  static const uint8_t kZeroHeader[kHeaderBytes] = {};
  const uint64_t limit = std::max(options_.segmentBytes, prepared_);
  if (iovOffset_ + iovBytes_ != end_ || end_ >= limit) return;
  iov_.push_back({const_cast<uint8_t*>(kZeroHeader), static_cast<size_t>(std::min<uint64_t>(kHeaderBytes, limit - end_))});
}

void Writer::FlushAndSync() {
  const auto start = std::chrono::steady_clock::now();
  if (!iov_.empty()) {
    Terminate();
    Flush();
  }
  if (!dirty_) return;
  if (options_.sync) {
    const auto t0 = std::chrono::steady_clock::now();
    if (fdatasync(fd_) != 0) throw IoError("fdatasync", JoinPath(options_.dir, name_), errno);
    const auto t1 = std::chrono::steady_clock::now();
    auto ns = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
    int b = 0;
    for (uint64_t bound = 1000000; b < kFsyncBuckets - 1 && ns > bound; bound *= 2) b++;
    fsyncBuckets_[b]++;
    fsyncNanos_ += ns;
    fsyncs_++;
    const auto commit = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - start).count());
    const uint64_t avg = commitAvgNs_.load();
    commitAvgNs_.store(avg - avg / 8 + commit / 8);
  }
  dirty_ = false;
  // Everything up to here is durable: the next group starts, and its markers cover it alone.
  mark_ = MarkState{end_, 0, 0};
}

void Writer::Rotate(uint64_t seq, uint64_t firstIndex, uint64_t stamp) {
  if (seq != seq_ + 1)
    throw WalError(WalCode::kIo, "internal error: asked to write segment " + std::to_string(seq) + " after " +
                                 std::to_string(seq_));
  // Before adding a file, make sure no one else can be writing here.
  if (options_.lock != nullptr && options_.lock->Verify()) Notice("re-created the deleted lock file", 0, 0);
  uint64_t prepared = 0;
  int fd = TakePreallocated(&prepared);
  std::string name = SegmentName(seq, firstIndex, stamp);
  std::string from = JoinPath(options_.dir, kPreallocName), to = JoinPath(options_.dir, name);
  if (rename(from.c_str(), to.c_str()) != 0) {
    int err = errno;
    close(fd);
    throw IoError("rename " + from + " to", to, err);
  }
  if (options_.sync) {
    try {
      SyncDirFd(dirFd_, options_.dir);
    } catch (...) {
      close(fd);  // not yet fd_: Stop would never close it
      throw;
    }
  }
  if (fd_ >= 0) close(fd_);
  fd_ = fd;
  seq_ = seq;
  name_ = name;
  mark_ = MarkState{};
  end_ = 0;
  prepared_ = prepared;
  if (directRefused_) DropDirect(fd_);  // prepared before the refusal
  direct_ = IsDirect(fd_);
  tailStart_ = kNoTail;
  segmentsCreated_++;
  RequestPrealloc();
}

void Writer::RequestPrealloc() {
  {
    std::lock_guard<std::mutex> lock(pmu_);
    preallocWanted_ = true;
  }
  pcv_.notify_all();
}

int Writer::TakePreallocated(uint64_t* prepared) {
  std::string error;
  {
    std::unique_lock<std::mutex> lock(pmu_);
    pcv_.wait(lock, [this] { return preallocDone_ || stopping_; });
    if (!preallocDone_) throw WalError(WalCode::kClosed, "WAL is closing");
    preallocDone_ = false;
    if (preallocError_.empty()) {
      int fd = preallocFd_;
      preallocFd_ = -1;
      *prepared = preallocBytes_;
      return fd;
    }
    error = preallocError_;
  }
  // Preparing failed in the background, maybe for a passing reason (a disk
  // full since cleaned up). Nothing is lost yet: try once more, here, and
  // fail the WAL only if that fails too.
  Notice("could not prepare the next segment (" + error + "); trying again", 1, 0);
  return CreatePreallocated(prepared);
}

// Running out of fds is a passing condition: wait for some to free up rather
// than failing a WAL that has lost nothing. Bounded (about half a minute in
// all), so that a rotation waiting for the segment ends, and close settles.
int Writer::OpenRetrying(const std::string& path, int flags) {
  constexpr int kRetries = 30;
  int delayMs = 10;
  for (int attempt = 1;; attempt++) {
    int fd = open(path.c_str(), flags | O_CLOEXEC, 0600);
    if (fd >= 0) return fd;
    int err = errno;
    if (err == EINTR) continue;
    if ((err != EMFILE && err != ENFILE) || attempt > kRetries) throw IoError("create", path, err);
    Notice("create " + path + ": " + strerror(err) + "; retrying", attempt, delayMs);
    std::unique_lock<std::mutex> lock(pmu_);
    if (pcv_.wait_for(lock, std::chrono::milliseconds(delayMs), [this] { return stopping_.load(); }))
      throw WalError(WalCode::kClosed, "WAL is closing");
    delayMs = std::min(delayMs * 2, 1000);
  }
}

void Writer::Notice(const std::string& message, int attempt, int delayMs) {
  if (!options_.notice) return;
  try {
    options_.notice(message, attempt, delayMs);
  } catch (...) {
    // A notice that cannot be delivered (out of memory) must not stop the writer.
  }
}

void Writer::PreallocLoop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(pmu_);
      pcv_.wait(lock, [this] { return preallocWanted_ || !released_.empty() || stopping_; });
      if (stopping_) break;
      if (!preallocWanted_) {
        // Released segments go only while no rotation waits for a prepared one.
        std::string path = std::move(released_.front());
        released_.pop_front();
        lock.unlock();
        RemoveReleased(path);
        continue;
      }
      preallocWanted_ = false;
    }
    int fd = -1;
    uint64_t prepared = 0;
    std::string error;
    try {
      fd = CreatePreallocated(&prepared);
    } catch (const WalError& e) {
      error = e.what();
    } catch (const std::exception& e) {
      error = std::string("internal error while preparing the next segment: ") + e.what();
    }
    {
      std::lock_guard<std::mutex> lock(pmu_);
      if (stopping_) {
        if (fd >= 0) close(fd);
        break;
      }
      preallocFd_ = fd;
      preallocBytes_ = prepared;
      preallocError_ = error;
      preallocDone_ = true;
    }
    pcv_.notify_all();
  }
  // Closing: what was released goes now, so that a closed log leaves no such files
  // (the next open removes any a crash left).
  std::deque<std::string> rest;
  {
    std::lock_guard<std::mutex> lock(pmu_);
    rest.swap(released_);
  }
  for (const std::string& path : rest) RemoveReleased(path);
}

// Shrinks the file in steps before removing it. Freeing a segment's blocks at once
// (an unlink) stalls the file system for as long as it takes, and on one mounted with
// `discard` that is about 20 ms per 64 MiB, during which the writer's next write and
// fdatasync wait; a few MiB at a time, each waits a millisecond or two at most.
// A rotation asking for the next segment meanwhile comes first: the file goes back to
// the front of the queue, to be shrunk further from where it was left.
void Writer::RemoveReleased(const std::string& path) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd >= 0) {
    struct stat st;
    if (fstat(fd, &st) == 0) {
      for (off_t size = st.st_size; size > 0;) {
        {
          std::lock_guard<std::mutex> lock(pmu_);
          if (preallocWanted_ && !stopping_) {
            released_.push_front(path);
            close(fd);
            return;
          }
        }
        size = size > static_cast<off_t>(kReleaseStepBytes) ? size - static_cast<off_t>(kReleaseStepBytes) : 0;
        if (ftruncate(fd, size) != 0) break;  // the unlink frees the rest
      }
    }
    close(fd);
  }
  if (unlink(path.c_str()) == 0 || errno == ENOENT) return;
  // Not part of the log any more: nothing is lost, and the next open removes it.
  Notice("could not remove the released segment " + path + ": " + strerror(errno) + "; the next open removes it", 0, 0);
}

// Keeps a released segment (at `path`, no longer part of the log) for a later
// prepared segment, unless RecycleLimit() are kept already or segments are not
// prepared ('none'). Its blocks are allocated and written: the next segment's
// fdatasyncs then carry no extent or size change, as a disk's overwrite does,
// and nothing is freed or zeroed. A log that compacts a few segments at a time
// then never creates or removes one in steady state. Under the directory sync
// that follows the release, as an unlink would be.
bool Writer::Recycle(const std::string& path) {
  std::string to;
  int renameError = 0;
  {
    std::lock_guard<std::mutex> lock(pmu_);
    if (recycled_ >= RecycleLimit()) return false;
    to = JoinPath(options_.dir, RecycledName(recycled_));
    if (rename(path.c_str(), to.c_str()) == 0) {
      recycled_++;
      segmentsRecycled_++;
      return true;
    }
    renameError = errno;
  }
  // Not an error (the segment is released either way), but if it keeps happening an
  // operator should know why every segment is prepared afresh.
  Notice("could not keep " + path + " for reuse as " + to + ": " + strerror(renameError) + "; removing it instead", 0, 0);
  return false;  // the caller unlinks it
}

// How many released segments are kept: kMaxRecycled, fewer where that would hold
// more than kMaxRecycledBytes, at least one; none where segments are not prepared.
int Writer::RecycleLimit() const {
  if (options_.prealloc == Prealloc::kNone) return 0;
  return static_cast<int>(std::clamp<uint64_t>(kMaxRecycledBytes / std::max<uint64_t>(options_.segmentBytes, 1), 1, kMaxRecycled));
}

// Takes over the segments an earlier run kept for reuse, so that a restart neither
// waits for their removal (20 ms or more per segment where the file system discards
// freed blocks) nor prepares its next segments afresh. They move down to slots
// 0 .. n-1 (a crash in ReuseRecycled may leave a gap); what the current options
// would not keep is removed. A lost rename or removal only leaves a file the next
// open takes over or removes again: nothing here needs a directory sync. Never
// read: a recycled file is only ever the next prepared segment, its old contents
// behind the zero header that ends every group. Before the threads start.
void Writer::AdoptRecycled() {
  const int limit = RecycleLimit();
  for (int slot = 0; slot < kMaxRecycled; slot++) {
    const std::string path = JoinPath(options_.dir, RecycledName(slot));
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) continue;
      throw IoError("stat", path, errno);
    }
    if (!S_ISREG(st.st_mode))
      throw WalError(WalCode::kCorrupt, "unexpected file " + path + " in WAL directory " + options_.dir + " (a recycled segment is a regular file)", path, -1);
    // A file with another name as well (a hard link, to a segment perhaps) is only
    // unlinked: writing into it would write into the other.
    if (recycled_ < limit && st.st_nlink == 1) {
      const std::string to = JoinPath(options_.dir, RecycledName(recycled_));
      if (to != path && rename(path.c_str(), to.c_str()) != 0) throw IoError("rename " + path + " to", to, errno);
      recycled_++;
    } else if (unlink(path.c_str()) != 0 && errno != ENOENT) {
      throw IoError("unlink", path, errno);
    }
  }
}

// Zeroes bytes [0, n) of a prepared segment in pieces of at most kFirstStep. Returns
// 0, the errno of a failed write, or -1 if the WAL started closing meanwhile.
int Writer::WriteZeros(int fd, uint64_t n) {
  if (IsDirect(fd)) n = BlockCeil(n);
  const uint64_t piece = std::min(kFirstStep, BlockCeil(n));
  AlignedBuffer zeros;
  memset(zeros.Reserve(piece), 0, static_cast<size_t>(piece));
  for (uint64_t off = 0; off < n;) {
    if (stopping_) return -1;
    ssize_t w = pwrite(fd, zeros.data(), static_cast<size_t>(std::min<uint64_t>(piece, n - off)), static_cast<off_t>(off));
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno == EINVAL && IsDirect(fd)) {
      RefuseDirect(fd, strerror(errno));
      continue;  // the same zeros through the page cache
    }
    if (w < 0) return errno;
    off += static_cast<uint64_t>(w);
  }
  return 0;
}

// The last recycled segment as the next prepared one, as it is: its old records stay
// until overwritten, but they carry another stamp and lie past the zero header
// that ends every group, so replay never reads them as this life's. -1 if there
// is none (or it is gone); throws if it cannot be prepared.
int Writer::ReuseRecycled(uint64_t* prepared) {
  std::string from, path = JoinPath(options_.dir, kPreallocName);
  int renameError = 0;
  {
    std::lock_guard<std::mutex> lock(pmu_);
    if (recycled_ == 0) return -1;
    from = JoinPath(options_.dir, RecycledName(--recycled_));
    // Under the lock Recycle renames under: a crash before the rotation leaves an
    // unused prepared segment, which open removes.
    if (rename(from.c_str(), path.c_str()) != 0) {
      renameError = errno;
      // Still in its slot: counted, or the next release would be renamed over it,
      // freeing its blocks on that thread. Unless it is gone.
      if (renameError != ENOENT) recycled_++;
    }
  }
  if (renameError != 0) {
    Notice("could not reuse " + from + ": " + strerror(renameError) + "; preparing a new segment instead", 0, 0);
    return -1;
  }
  int fd = OpenRetrying(path, O_RDWR);
  TryDirectUnlessRefused(fd);
  auto fail = [&](const char* what) {
    int err = errno;
    close(fd);
    return IoError(what, path, err);
  };
  // Usually its size already: a segment that outgrew it for a large record shrinks back.
  const uint64_t bytes = options_.segmentBytes;
  if (ftruncate(fd, static_cast<off_t>(bytes)) != 0) throw fail("truncate");
  if (options_.sync && fdatasync(fd) != 0) throw fail("fdatasync");
  *prepared = bytes;
  return fd;
}

int Writer::CreatePreallocated(uint64_t* prepared) {
  int reused = ReuseRecycled(prepared);
  if (reused >= 0) return reused;
  std::string path = JoinPath(options_.dir, kPreallocName);
  int fd = OpenRetrying(path, O_RDWR | O_CREAT | O_TRUNC);
  TryDirectUnlessRefused(fd);
  auto fail = [&](const char* what) {
    int err = errno;
    close(fd);
    return IoError(what, path, err);
  };
  uint64_t bytes = 0;
  if (options_.prealloc == Prealloc::kZeros) {
    bytes = std::min(kFirstStep, options_.segmentBytes);
    // Only the first step: the writer thread zeroes the rest while idle
    // (PrepareAhead). Writing zeros, not just reserving blocks, is what makes
    // later fdatasyncs cheap: the blocks are allocated and initialized.
    // A close may cut it short: the file is then discarded.
    int zeroed = WriteZeros(fd, bytes);
    errno = zeroed;
    if (zeroed > 0) throw fail("preallocate");
  } else if (options_.prealloc == Prealloc::kFallocate) {
    bytes = options_.segmentBytes;
    int err = posix_fallocate(fd, 0, static_cast<off_t>(options_.segmentBytes));
    if (err != 0) {
      errno = err;
      throw fail("fallocate");
    }
  }
  if (options_.sync && fdatasync(fd) != 0) throw fail("fdatasync");
  *prepared = bytes;
  return fd;
}

}  // namespace raftlog
