// The group-commit writer: one native thread that takes every job queued while
// it was busy, writes them with as few calls as the layout allows (whole
// blocks past the page cache where it can: direct_io.h), and makes them
// durable with one fdatasync. A second thread prepares the
// next segment so that rotation does not wait for it, and removes released
// segments so that appends do not wait for that.
//
// The TypeScript face decides where every record goes (segment and offset);
// Submit stamps and checksums its records on the submitting thread (while the
// writer thread may be in an fdatasync), and this thread fills in each job's
// closing marker, writes, syncs and reports the id of the last job that is
// durable. A small job submitted while the thread is idle runs on
// the submitting thread instead (Submit): a lone commit then costs one
// fdatasync, not that plus a wake-up of each thread. After any write or sync
// error it fails that job and every later one: a failed fsync may have
// dropped dirty pages, so retrying could report data durable that is not.
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "direct_io.h"
#include "scan.h"

namespace raftlog {

class DirLock;

enum class Prealloc { kZeros = 0, kFallocate = 1, kNone = 2 };

// kZeros: a new segment starts with kFirstStep bytes of zeros, and the writer
// thread, whenever its queue is empty (for kQuietMs, with large groups),
// zeroes a step further ahead of the write position once less than half a
// step is left: kFirstStep with small groups, else each step twice the last,
// up to kMaxStep.
constexpr uint64_t kFirstStep = 1ull << 20;
constexpr uint64_t kMaxStep = 8ull << 20;
// How long the queue must stay empty before the writer zeroes ahead, when its
// groups are large.
constexpr int kQuietMs = 2;
// Groups at most this large on average (a moving average, 1/8 weight to the
// newest) make the writer zero ahead as soon as it is idle, in steps of
// kFirstStep. Their fdatasyncs cost about a fixed amount each, which a file
// that grows with every group raises by half or more (the size change is a
// journal commit); zeroing costs a second write of each byte, which larger
// groups, whose syncs are dominated by their bytes, do not pay back.
constexpr uint64_t kEagerZeroMaxGroupBytes = 128 << 10;
// A job submitted while the writer is idle runs on the submitting thread
// (see Submit) when it is at most this large and recent commits (a group's
// write and its fdatasync) averaged at most this long: the event loop then
// waits about one commit, as with SQLite, instead of paying two thread
// wake-ups per commit. Up to 512 KiB rather than 64: a lone writer of 1,024
// records of 100 B (143 KB a job) made 1.07x the appends/s (median of five
// interleaved pairs), an embedded log at 100 B x 1,024 clients 1.14x with a
// lower p99 (four), and one at 1 KiB x 256 clients (270 KB jobs) 1.18x at
// 0.34-0.51x the p99 (four). 1 MiB gained nothing more. The time bound, the
// write included, keeps a slow disk's larger writes on the thread.
constexpr size_t kInlineMaxBytes = 512 << 10;
constexpr uint64_t kInlineMaxCommitNs = 1000000;
// Only for a caller that waits for each commit before the next, though: one that
// keeps submitting while an fdatasync runs gains more from the thread, which
// overlaps its work with the sync and groups its jobs. That shows as jobs that
// find the writer busy; inline jobs hide it (the writer is never busy), so now
// and then a job goes to the thread to look, and inline resumes only after
// kInlineIdleStreak jobs in a row found the writer idle. A look costs the
// lone caller two thread wake-ups: the kInlineProbe-th job that could run
// inline looks, and each look that finds the caller waiting doubles the
// interval to the next, up to kInlineProbeMax, until a job finds the writer
// busy with another. (With every 16th job looking, a lone caller made 3-11%
// fewer commits per second.)
constexpr int kInlineProbe = 16;
constexpr int kInlineProbeMax = 256;
constexpr int kInlineIdleStreak = 4;
// The most a direct write stages and writes at once (a multiple of
// kDirectBlock): a larger group goes out in pieces, so that one large batch
// does not leave a buffer of its size behind.
constexpr uint64_t kStageBytes = 8ull << 20;
// A released segment is shrunk this much at a time before it is removed (RemoveReleased).
constexpr uint64_t kReleaseStepBytes = 4ull << 20;

struct WriterOptions {
  std::string dir;
  uint64_t segmentBytes = 64ull << 20;
  bool sync = true;
  Prealloc prealloc = Prealloc::kZeros;
  // Checked at every rotation and at close; outlives the writer.
  DirLock* lock = nullptr;
  // Something went wrong that the writer works around (a retried failure to
  // prepare the next segment); called on a native thread.
  std::function<void(const std::string& message, int attempt, int delayMs)> notice;
};

// [begin, end) of `data` goes to segment `seq` at `offset`. If `seq` is the
// segment after the current one, the writer rotates into it first, naming it
// after `firstIndex`. The caller keeps `data` alive until the job is reported.
struct Chunk {
  uint8_t* data;
  size_t begin, end;
  uint64_t seq, offset, firstIndex;
};

struct Job {
  // kFence: checks that LOCK still names the file this instance locked, and fails the
  // writer for good if not (nothing of its group, nor anything after it, is written).
  enum Type { kWrite, kRelease, kFence, kClose } type = kWrite;
  uint64_t id = 0;
  std::vector<Chunk> chunks;
  std::vector<std::string> unlink;  // kRelease: segment names to remove
};

// Upper bounds of the fsync duration buckets: 1 ms doubling to 8.192 s, then +Inf
// (etcd's wal_fsync_duration_seconds buckets).
constexpr int kFsyncBuckets = 15;

struct WriterStats {
  uint64_t writes, fsyncs, bytes, groups, inlineGroups, segmentsCreated, segmentsRemoved, segmentsRecycled, stagingBytes;
  // Per-bucket (not cumulative) counts of hot-path fdatasyncs, and their total time.
  uint64_t fsyncBuckets[kFsyncBuckets];
  uint64_t fsyncNanos;
};

class Writer {
 public:
  // Called on the writer thread after each group: all jobs up to lastId are
  // done, or failed with `error` (then every later job fails too).
  using Report = std::function<void(uint64_t lastId, const std::string* error)>;

  // `mark`: the last segment's open group (from the scan): the next marker written
  // there covers those records too. `end`: where its records end; `atMarker`: they end
  // with a marker.
  Writer(WriterOptions options, uint64_t lastSeq, const std::string& lastName, MarkState mark, uint64_t end, bool atMarker, Report report);
  ~Writer();

  // Returns the job's id. Negative: the writer was idle, so the job ran on
  // this thread and is durable; it is not reported. A failure is reported
  // as for a queued job.
  // `mayInline` false: always queue (the caller has other work to do meanwhile).
  int64_t Submit(Job job, bool mayInline = false);
  void Stop();                // joins the threads; pending jobs are dropped unreported
  WriterStats Stats() const;

 private:
  void Seal(Job& job);
  void Run();
  template <typename F>
  void Guarded(F&& work);
  void Execute(Job& job);
  void Write(Job& job, const Chunk& c);
  void Flush();
  void DirectFlush();
  void Gather(uint64_t at, uint64_t n, uint8_t* out);
  void WriteBlocks(uint64_t at, uint64_t n);
  void RefuseDirect(int fd, const char* why);
  void SegmentThroughPageCache(const char* why);
  bool TryDirectUnlessRefused(int fd);
  void LoadBlock(uint64_t at, uint8_t* out);
  void FlushAndSync();
  void Terminate();
  void Rotate(uint64_t seq, uint64_t firstIndex, uint64_t stamp);
  void PrepareAhead();
  bool Idle();
  bool Quiet();
  void NoteGroup(uint64_t bytes);
  bool SmallGroups() const;
  enum class InlineResult { kDurable, kFailed, kNotRun };
  InlineResult Inline(Job& job);
  struct Ended {
    bool failed;
    std::string error;
    bool zero;  // the segment is short of zeroed space
  };
  Ended EndBusy(bool wakeToZero);
  bool NeedsZeros() const;
  bool ZeroStep();
  void SetPreparing(bool on);
  void PreallocLoop();
  int CreatePreallocated(uint64_t* prepared);
  bool Recycle(const std::string& path);
  int RecycleLimit() const;
  void AdoptRecycled();
  void RemoveReleased(const std::string& path);
  int ReuseRecycled(uint64_t* prepared);
  int WriteZeros(int fd, uint64_t n);
  int OpenRetrying(const std::string& path, int flags);
  void Notice(const std::string& message, int attempt, int delayMs);
  int TakePreallocated(uint64_t* prepared);
  void RequestPrealloc();

  const WriterOptions options_;
  const Report report_;

  // The submitting thread's: the segment Submit last saw a chunk for, and its stamp.
  uint64_t submitSeq_ = 0, submitStamp_ = 0;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  uint64_t nextId_ = 1;
  std::atomic<bool> stopping_{false};
  // Someone is executing (a group, a zeroing step or an inline job): the
  // state below belongs to whoever set it, under mu_, until they clear it.
  bool busy_ = false;
  // An inline job left the segment short of zeroed space: the writer thread
  // should zero ahead once quiet.
  bool prepareWanted_ = false;
  int idleStreak_ = 0;   // jobs in a row that found the writer idle
  int inlineRun_ = 0;    // inline jobs since the last one that went to the thread
  int probeEvery_ = kInlineProbe;  // every probeEvery_-th job that could run inline goes to the thread to look
  bool probed_ = false;  // the last job went to the thread to look
  bool preparing_ = false;  // the writer thread is in PrepareAhead
  uint64_t queuedWhileZeroing_ = 0;  // the last job that found the writer only zeroing ahead

  // Whoever is busy_ (the writer thread, or the submitting thread inline).
  int fd_ = -1;
  int dirFd_ = -1;  // held open so that a directory sync never needs a new fd
  uint64_t seq_ = 0;
  std::string name_;
  bool dirty_ = false;
  bool failed_ = false;
  std::string error_;
  std::vector<iovec> iov_;
  // DirectFlush's plan: [at, at + n) of the segment from `from`, or from stage_ where it is null.
  struct Piece {
    uint64_t at, n;
    const uint8_t* from;
  };
  std::vector<Piece> pieces_;
  std::vector<iovec> blocks_;  // what WriteBlocks writes
  size_t gatherIov_ = 0;       // Gather's place in iov_: the iovec it reads, and where that starts
  uint64_t gatherAt_ = 0;
  uint64_t iovOffset_ = 0, iovBytes_ = 0;
  MarkState mark_;    // the records of the current segment since its last sync (the open group)
  uint64_t end_ = 0;  // where the last chunk written to the current segment ends
  uint64_t prepared_ = 0;  // the current segment's bytes that exist on disk (written or preallocated)
  uint64_t step_ = kFirstStep;
  // fd_ bypasses the page cache (direct_io.h): every write is whole blocks, from the caller's
  // memory where it is aligned as the file is, else staged in stage_.
  bool direct_ = false;
  // A direct write was refused: every segment of this WAL goes through the page cache from then on.
  std::atomic<bool> directRefused_{false};
  AlignedBuffer stage_;
  // The block at tailStart_ as last written (kNoTail: none kept), the start of the next direct write.
  static constexpr uint64_t kNoTail = ~uint64_t(0);
  AlignedBuffer tail_;
  uint64_t tailStart_ = kNoTail;
  // kFirstStep zero bytes, block-aligned, for zeroing ahead.
  AlignedBuffer zeros_;

  std::mutex pmu_;
  std::condition_variable pcv_;
  bool preallocWanted_ = false, preallocDone_ = false;
  int preallocFd_ = -1;
  uint64_t preallocBytes_ = 0;
  std::string preallocError_;
  // Released segments kept to become prepared ones, under RecycledName(0 .. recycled_ - 1).
  int recycled_ = 0;
  // Released segments, renamed with kReleasedSuffix, for the preparing thread to remove.
  std::deque<std::string> released_;
  // Segments a release could not rename out of the log (names): the next release tries again.
  std::vector<std::string> unreleased_;

  std::atomic<uint64_t> writes_{0}, fsyncs_{0}, bytes_{0}, groups_{0}, inlineGroups_{0}, segmentsCreated_{0}, segmentsRemoved_{0},
      segmentsRecycled_{0}, stagingBytes_{0};
  // Timed on this thread, read by Stats() at scrape time: the hot path pays two clock reads.
  std::atomic<uint64_t> fsyncBuckets_[kFsyncBuckets] = {}, fsyncNanos_{0};
  // Moving average of recent groups' last write and its fdatasync (1/8 weight to the newest), for Submit.
  std::atomic<uint64_t> commitAvgNs_{0};
  // Moving average of the bytes of recent groups (1/8 weight), for Quiet.
  std::atomic<uint64_t> groupBytesAvg_{0};

  std::thread thread_, preallocThread_;
};

}  // namespace raftlog
