// The N-API surface: a WalHandle per open directory (lock, replay, writer
// thread, reads) and two free functions (scan for `raftlog inspect`, crc32c
// for tests). Everything here runs on the JS thread except the writer's
// reports and notices, which cross back through a thread-safe function.
//
// No C++ exception may leave a native thread or a call into JS: either would
// terminate the whole process (a worker thread ending with appends in flight
// included). Thread bodies turn every exception into a coded WAL error, and
// the report callback uses the C API, which returns a status instead.
#include <fcntl.h>
#include <napi.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <exception>
#include <map>
#include <memory>

#include "crc32c.h"
#include "direct_io.h"
#include "reader.h"
#include "record.h"
#include "scan.h"
#include "segment.h"
#include "wal_error.h"
#include "writer.h"

namespace raftlog {
namespace {

Napi::Error ToJs(Napi::Env env, const WalError& e) {
  Napi::Error err = Napi::Error::New(env, e.what());
  err.Set("code", Napi::String::New(env, e.code));
  if (!e.file.empty()) err.Set("file", Napi::String::New(env, e.file));
  if (e.offset >= 0) err.Set("offset", Napi::Number::New(env, static_cast<double>(e.offset)));
  return err;
}

// Eight numbers per record: kind, segment, offset, length, type, a, b, c. Off the JS thread
// where it can be: for millions of records this took seconds.
std::vector<double> PackRecords(std::vector<ScannedRecord>&& records) {
  std::vector<double> out;
  out.reserve(records.size() * 8);
  for (const ScannedRecord& x : records)
    out.insert(out.end(), {static_cast<double>(x.kind), static_cast<double>(x.segment), static_cast<double>(x.offset), static_cast<double>(x.length),
                           static_cast<double>(x.type), static_cast<double>(x.a), static_cast<double>(x.b), static_cast<double>(x.c)});
  std::vector<ScannedRecord>().swap(records);  // freed now: the scan's peak is one copy, not two
  return out;
}

// `records` from PackRecords, handed to JS without a copy.
Napi::Object ScanToJs(Napi::Env env, const ScanResult& r, std::vector<double>&& records) {
  Napi::Object out = Napi::Object::New(env);
  Napi::Array segs = Napi::Array::New(env, r.segments.size());
  for (size_t i = 0; i < r.segments.size(); i++) {
    const ScannedSegment& s = r.segments[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("seq", static_cast<double>(s.seq));
    o.Set("firstIndex", static_cast<double>(s.firstIndex));
    o.Set("name", s.name);
    o.Set("size", static_cast<double>(s.size));
    o.Set("end", static_cast<double>(s.end));
    Napi::Object mark = Napi::Object::New(env);
    mark.Set("start", static_cast<double>(s.mark.start));
    mark.Set("records", static_cast<double>(s.mark.records));
    mark.Set("crc", static_cast<double>(s.mark.crc));
    mark.Set("atMarker", s.atMarker);
    o.Set("mark", mark);
    segs.Set(i, o);
  }
  out.Set("segments", segs);
  if (records.empty()) {
    out.Set("records", Napi::Float64Array::New(env, 0));
  } else {
    auto* held = new std::vector<double>(std::move(records));
    Napi::ArrayBuffer buf = Napi::ArrayBuffer::New(
        env, held->data(), held->size() * sizeof(double), [](Napi::Env, void*, std::vector<double>* v) { delete v; }, held);
    out.Set("records", Napi::Float64Array::New(env, held->size(), buf, 0));
  }
  Napi::Array metas = Napi::Array::New(env, r.metas.size());
  for (size_t i = 0; i < r.metas.size(); i++)
    metas.Set(i, Napi::Buffer<uint8_t>::Copy(env, r.metas[i].data(), r.metas[i].size()));
  out.Set("metas", metas);
  out.Set("searchBytes", static_cast<double>(r.searchBytes));
  if (r.torn) {
    Napi::Object t = Napi::Object::New(env);
    t.Set("file", r.tornTail.file);
    t.Set("offset", static_cast<double>(r.tornTail.offset));
    t.Set("droppedBytes", static_cast<double>(r.tornTail.droppedBytes));
    out.Set("torn", t);
  } else {
    out.Set("torn", env.Null());
  }
  return out;
}

class ReadWorker : public Napi::AsyncWorker {
 public:
  ReadWorker(Napi::Function cb, int fd, std::string path, uint64_t offset, size_t length)
      : Napi::AsyncWorker(cb), fd_(fd), path_(std::move(path)), offset_(offset), data_(new std::vector<uint8_t>(length)) {}
  ~ReadWorker() override {
    close(fd_);
    delete data_;
  }
  void Execute() override {
    try {
      ReadRecords(fd_, path_, offset_, data_->size(), data_->data());
    } catch (const WalError& e) {
      error_ = std::make_unique<WalError>(e);
      SetError(e.what());
    } catch (const std::exception& e) {
      error_ = std::make_unique<WalError>(WalCode::kIo, std::string("internal error reading ") + path_ + ": " + e.what());
      SetError(e.what());
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    std::vector<uint8_t>* v = data_;
    data_ = nullptr;
    auto buf = Napi::Buffer<uint8_t>::New(env, v->data(), v->size(), [](Napi::Env, uint8_t*, std::vector<uint8_t>* hint) { delete hint; }, v);
    Callback().Call({env.Null(), buf});
  }
  void OnError(const Napi::Error&) override { Callback().Call({ToJs(Env(), *error_).Value()}); }

 private:
  int fd_;
  std::string path_;
  uint64_t offset_;
  std::vector<uint8_t>* data_;
  std::unique_ptr<WalError> error_;
};

class ScanWorker : public Napi::AsyncWorker {
 public:
  ScanWorker(Napi::Function cb, std::string dir, std::string keepName, uint64_t keepEnd)
      : Napi::AsyncWorker(cb), dir_(std::move(dir)), keepName_(std::move(keepName)), keepEnd_(keepEnd) {}
  void Execute() override {
    try {
      result_ = ScanDir(dir_, true, keepName_, keepEnd_);
      records_ = PackRecords(std::move(result_.records));
    } catch (const WalError& e) {
      error_ = std::make_unique<WalError>(e);
      SetError(e.what());
    } catch (const std::exception& e) {
      error_ = std::make_unique<WalError>(WalCode::kIo, std::string("internal error scanning ") + dir_ + ": " + e.what());
      SetError(e.what());
    }
  }
  void OnOK() override {
    Napi::Value scan;
    try {
      scan = ScanToJs(Env(), result_, std::move(records_));
    } catch (const std::exception& e) {
      // The open waiting for this scan must settle, so the failure goes to the callback.
      Callback().Call({ToJs(Env(), WalError(WalCode::kIo, std::string("cannot hand over the scan: ") + e.what())).Value()});
      return;
    }
    Callback().Call({Env().Null(), scan});
  }
  void OnError(const Napi::Error&) override { Callback().Call({ToJs(Env(), *error_).Value()}); }

 private:
  std::string dir_;
  std::string keepName_;
  uint64_t keepEnd_;
  ScanResult result_;
  std::vector<double> records_;
  std::unique_ptr<WalError> error_;
};

// What the writer threads send to JS: a group's outcome, or a notice.
struct Report {
  bool notice;
  uint64_t lastId;
  bool failed;
  std::string text;
  int attempt, delayMs;
};

// Runs on the JS thread for each Report: onReport(lastId, error?) or
// onNotice(message, attempt, delayMs). Only C API calls, so nothing throws;
// a failed call leaves its exception pending, which node reports as
// uncaught, or drops when the environment is being torn down.
void CallJs(napi_env env, napi_value onReport, void* context, void* data) {
  std::unique_ptr<Report> r(static_cast<Report*>(data));
  if (env == nullptr || onReport == nullptr) return;  // torn down: just free the report
  napi_value undefined, argv[3], fn = onReport, ignored;
  if (napi_get_undefined(env, &undefined) != napi_ok) return;
  size_t argc;
  if (r->notice) {
    if (napi_get_reference_value(env, static_cast<napi_ref>(context), &fn) != napi_ok || fn == nullptr) return;
    if (napi_create_string_utf8(env, r->text.data(), r->text.size(), &argv[0]) != napi_ok ||
        napi_create_int32(env, r->attempt, &argv[1]) != napi_ok ||
        napi_create_int32(env, r->delayMs, &argv[2]) != napi_ok)
      return;
    argc = 3;
  } else {
    if (napi_create_double(env, static_cast<double>(r->lastId), &argv[0]) != napi_ok) return;
    argv[1] = undefined;
    if (r->failed && napi_create_string_utf8(env, r->text.data(), r->text.size(), &argv[1]) != napi_ok) return;
    argc = 2;
  }
  napi_call_function(env, undefined, fn, argc, argv, &ignored);
}

class WalHandle : public Napi::ObjectWrap<WalHandle> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "WalHandle",
                       {
                           InstanceMethod<&WalHandle::Start>("start"),
                           InstanceMethod<&WalHandle::Submit>("submit"),
                           InstanceMethod<&WalHandle::Release>("release"),
                           InstanceMethod<&WalHandle::Fence>("fence"),
                           InstanceMethod<&WalHandle::Close>("close"),
                           InstanceMethod<&WalHandle::Dispose>("dispose"),
                           InstanceMethod<&WalHandle::Read>("read"),
                           InstanceMethod<&WalHandle::ReadAsync>("readAsync"),
                           InstanceMethod<&WalHandle::ScanAsync>("scanAsync"),
                           InstanceMethod<&WalHandle::Stats>("stats"),
                           InstanceMethod<&WalHandle::Ref>("ref"),
                           InstanceMethod<&WalHandle::Unref>("unref"),
                       });
  }

  // new WalHandle(dir, firstName, firstHeader, prealloc, segmentBytes): takes the directory
  // lock, creating the directory (durably) with segment 1, prepared as start() would prepare
  // it, holding its header alone, if it does not exist.
  explicit WalHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<WalHandle>(info) {
    dir_ = info[0].As<Napi::String>().Utf8Value();
    Napi::Uint8Array header = info[2].As<Napi::Uint8Array>();
    const auto prealloc = static_cast<Prealloc>(info[3].As<Napi::Number>().Int32Value());
    const auto segmentBytes = static_cast<uint64_t>(info[4].As<Napi::Number>().DoubleValue());
    FirstSegment first{info[1].As<Napi::String>().Utf8Value(), std::vector<uint8_t>(header.Data(), header.Data() + header.ByteLength()),
                       prealloc == Prealloc::kZeros ? std::min(kFirstStep, segmentBytes) : 0,
                       prealloc == Prealloc::kFallocate ? segmentBytes : 0};
    try {
      lock_ = DirLock::Acquire(dir_, first);
    } catch (const WalError& e) {
      throw ToJs(info.Env(), e);
    }
    env_ = info.Env();
    napi_add_env_cleanup_hook(env_, Cleanup, this);
    hooked_ = true;
  }

  ~WalHandle() override {
    if (hooked_) napi_remove_env_cleanup_hook(env_, Cleanup, this);
    Shutdown();
  }

 private:
  // The environment is going away (process or worker exit) without close():
  // stop the threads so they never touch a dead environment.
  static void Cleanup(void* arg) {
    auto* self = static_cast<WalHandle*>(arg);
    self->hooked_ = false;
    self->Shutdown();
  }

  // Stops the threads and drops every fd and the lock. Idempotent.
  void Shutdown() {
    writer_.reset();
    if (tsfn_ != nullptr) {
      napi_release_threadsafe_function(tsfn_, napi_tsfn_release);
      tsfn_ = nullptr;
    }
    for (auto& [name, fd] : readFds_) close(fd);
    readFds_.clear();
    lock_.reset();
  }

  // start(segmentBytes, sync, prealloc, lastSeq, lastName, onReport(lastId, error?),
  //       onNotice(message, attempt, delayMs), markStart, markRecords, markCrc, end, atMarker)
  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (writer_ || !lock_) throw Napi::Error::New(env, "WAL handle is already started or disposed");
    WriterOptions o;
    o.dir = dir_;
    o.lock = lock_.get();
    o.segmentBytes = static_cast<uint64_t>(info[0].As<Napi::Number>().DoubleValue());
    o.sync = info[1].As<Napi::Boolean>().Value();
    o.prealloc = static_cast<Prealloc>(info[2].As<Napi::Number>().Int32Value());
    uint64_t lastSeq = static_cast<uint64_t>(info[3].As<Napi::Number>().DoubleValue());
    std::string lastName = info[4].As<Napi::String>().Utf8Value();
    MarkState mark{static_cast<uint64_t>(info[7].As<Napi::Number>().DoubleValue()), info[8].As<Napi::Number>().Uint32Value(),
                   info[9].As<Napi::Number>().Uint32Value()};
    const auto end = static_cast<uint64_t>(info[10].As<Napi::Number>().DoubleValue());
    const bool atMarker = info[11].As<Napi::Boolean>().Value();
    napi_ref onNotice;
    NAPI_THROW_IF_FAILED(env, napi_create_reference(env, info[6].As<Napi::Function>(), 1, &onNotice), Napi::Value());
    napi_value name = Napi::String::New(env, "raftlog-wal");
    napi_threadsafe_function tsfn;
    napi_status st = napi_create_threadsafe_function(
        env, info[5].As<Napi::Function>(), nullptr, name, 0, 1, onNotice,
        [](napi_env env, void* ref, void*) { napi_delete_reference(env, static_cast<napi_ref>(ref)); }, onNotice,
        CallJs, &tsfn);
    if (st != napi_ok) {
      napi_delete_reference(env, onNotice);
      NAPI_THROW_IF_FAILED(env, st, Napi::Value());
    }
    tsfn_ = tsfn;
    napi_unref_threadsafe_function(env, tsfn_);
    // The writer threads only queue reports; a queue that is closing (the
    // environment is going away) refuses them and they are dropped here.
    auto send = [tsfn](Report* r) {
      if (napi_call_threadsafe_function(tsfn, r, napi_tsfn_nonblocking) != napi_ok) delete r;
    };
    o.notice = [send](const std::string& message, int attempt, int delayMs) {
      send(new Report{true, 0, false, message, attempt, delayMs});
    };
    try {
      writer_ = std::make_unique<Writer>(o, lastSeq, lastName, mark, end, atMarker, [send](uint64_t lastId, const std::string* error) {
        send(new Report{false, lastId, error != nullptr, error != nullptr ? *error : "", 0, 0});
      });
    } catch (const WalError& e) {
      throw ToJs(env, e);
    } catch (const std::exception& e) {
      throw ToJs(env, WalError(WalCode::kIo, std::string("cannot start the WAL writer: ") + e.what()));
    }
    return env.Undefined();
  }

  void RequireWriter(Napi::Env env) {
    if (!writer_) throw Napi::Error::New(env, "WAL handle is not started or already disposed");
  }

  // submit(buffers: Uint8Array[], plan: Float64Array, chunks: number, mayInline: boolean)
  // -> job id, negated if the job already ran on this thread and is durable (Writer::Submit).
  // The plan holds six numbers per chunk: buffer, begin, end, seq, offset,
  // firstIndex. All appends made in one JS tick arrive as one job.
  Napi::Value Submit(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    RequireWriter(env);
    Napi::Array buffers = info[0].As<Napi::Array>();
    Napi::Float64Array plan = info[1].As<Napi::Float64Array>();
    size_t chunks = info[2].As<Napi::Number>().Uint32Value();
    if (chunks * 6 > plan.ElementLength()) throw Napi::RangeError::New(env, "plan too short");
    std::vector<std::pair<uint8_t*, size_t>> bufs(buffers.Length());
    for (uint32_t i = 0; i < buffers.Length(); i++) {
      Napi::Uint8Array b = buffers.Get(i).As<Napi::Uint8Array>();
      bufs[i] = {b.Data(), b.ByteLength()};
    }
    Job job;
    job.type = Job::kWrite;
    const double* p = plan.Data();
    job.chunks.reserve(chunks);
    for (size_t i = 0; i < chunks; i++, p += 6) {
      size_t b = static_cast<size_t>(p[0]);
      if (b >= bufs.size()) throw Napi::RangeError::New(env, "plan names a missing buffer");
      Chunk c{bufs[b].first, static_cast<size_t>(p[1]), static_cast<size_t>(p[2]), static_cast<uint64_t>(p[3]),
              static_cast<uint64_t>(p[4]), static_cast<uint64_t>(p[5])};
      if (c.begin > c.end || c.end > bufs[b].second) throw Napi::RangeError::New(env, "plan outside the buffer");
      job.chunks.push_back(c);
    }
    bool mayInline = info[3].As<Napi::Boolean>().Value();
    try {
      return Napi::Number::New(env, static_cast<double>(writer_->Submit(std::move(job), mayInline)));
    } catch (const WalError& e) {
      throw ToJs(env, e);
    }
  }

  // release(names: string[]) -> job id
  Napi::Value Release(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    RequireWriter(env);
    Napi::Array names = info[0].As<Napi::Array>();
    Job job;
    job.type = Job::kRelease;
    for (uint32_t i = 0; i < names.Length(); i++) {
      std::string name = names.Get(i).As<Napi::String>().Utf8Value();
      auto it = readFds_.find(name);
      if (it != readFds_.end()) {
        close(it->second);
        readFds_.erase(it);
      }
      job.unlink.push_back(name);
    }
    return Napi::Number::New(env, static_cast<double>(writer_->Submit(std::move(job))));
  }

  // fence() -> job id: done once everything before it is durable, and failed (WAL_IO, the
  // writer failed for good, nothing of its group written) if LOCK names another file.
  Napi::Value Fence(const Napi::CallbackInfo& info) {
    RequireWriter(info.Env());
    Job job;
    job.type = Job::kFence;
    return Napi::Number::New(info.Env(), static_cast<double>(writer_->Submit(std::move(job))));
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    RequireWriter(info.Env());
    Job job;
    job.type = Job::kClose;
    return Napi::Number::New(info.Env(), static_cast<double>(writer_->Submit(std::move(job))));
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    Shutdown();
    return info.Env().Undefined();
  }

  int ReadFd(const std::string& name) {
    auto it = readFds_.find(name);
    if (it != readFds_.end()) return it->second;
    std::string path = JoinPath(dir_, name);
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw IoError("open", path, errno);
    // Never a cached copy of a block the writer has since rewritten directly (direct_io.h).
    TryDirect(fd);
    readFds_[name] = fd;
    return fd;
  }

  // read(name, offset, length) -> Buffer of whole records, every CRC checked.
  Napi::Value Read(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string name = info[0].As<Napi::String>().Utf8Value();
    uint64_t offset = static_cast<uint64_t>(info[1].As<Napi::Number>().DoubleValue());
    size_t length = static_cast<size_t>(info[2].As<Napi::Number>().DoubleValue());
    try {
      int fd = ReadFd(name);
      Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, length);
      ReadRecords(fd, JoinPath(dir_, name), offset, length, out.Data());
      return out;
    } catch (const WalError& e) {
      throw ToJs(env, e);
    }
  }

  // readAsync(name, offset, length, cb(err, buffer)): the same read on the
  // libuv thread pool. It reads through a dup of the cached fd, so a release
  // that unlinks the segment meanwhile cannot pull the file away; one that
  // recycles it may rewrite it as another segment, whose whole records pass
  // their CRCs but fail the caller's check of each entry's index and position
  // (torn ones fail the CRCs), and the range is compacted by then.
  Napi::Value ReadAsync(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string name = info[0].As<Napi::String>().Utf8Value();
    uint64_t offset = static_cast<uint64_t>(info[1].As<Napi::Number>().DoubleValue());
    size_t length = static_cast<size_t>(info[2].As<Napi::Number>().DoubleValue());
    Napi::Function cb = info[3].As<Napi::Function>();
    int fd;
    try {
      fd = fcntl(ReadFd(name), F_DUPFD_CLOEXEC, 0);
      if (fd < 0) throw IoError("dup fd of", JoinPath(dir_, name), errno);
    } catch (const WalError& e) {
      throw ToJs(env, e);
    }
    (new ReadWorker(cb, fd, JoinPath(dir_, name), offset, length))->Queue();
    return env.Undefined();
  }

  // scanAsync(cb(err, scan)): replay's scan (with tail repair) on the thread pool.
  Napi::Value ScanAsync(const Napi::CallbackInfo& info) {
    // scanAsync(cb, keepName?, keepEnd?): damage in segment keepName below keepEnd is corruption.
    std::string keepName = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
    uint64_t keepEnd = info.Length() > 2 && info[2].IsNumber() ? static_cast<uint64_t>(info[2].As<Napi::Number>().Int64Value()) : 0;
    (new ScanWorker(info[0].As<Napi::Function>(), dir_, std::move(keepName), keepEnd))->Queue();
    return info.Env().Undefined();
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    WriterStats s = writer_ ? writer_->Stats() : WriterStats{};
    o.Set("writes", static_cast<double>(s.writes));
    o.Set("fsyncs", static_cast<double>(s.fsyncs));
    o.Set("bytes", static_cast<double>(s.bytes));
    o.Set("groups", static_cast<double>(s.groups));
    o.Set("inlineGroups", static_cast<double>(s.inlineGroups));
    o.Set("segmentsCreated", static_cast<double>(s.segmentsCreated));
    o.Set("segmentsRemoved", static_cast<double>(s.segmentsRemoved));
    o.Set("segmentsRecycled", static_cast<double>(s.segmentsRecycled));
    o.Set("stagingBytes", static_cast<double>(s.stagingBytes));
    Napi::Array buckets = Napi::Array::New(env, kFsyncBuckets);
    for (int i = 0; i < kFsyncBuckets; i++) buckets.Set(static_cast<uint32_t>(i), static_cast<double>(s.fsyncBuckets[i]));
    o.Set("fsyncBuckets", buckets);
    o.Set("fsyncSeconds", static_cast<double>(s.fsyncNanos) / 1e9);
    return o;
  }

  // The report function keeps the process alive only while appends are pending.
  Napi::Value Ref(const Napi::CallbackInfo& info) {
    if (tsfn_ != nullptr) napi_ref_threadsafe_function(info.Env(), tsfn_);
    return info.Env().Undefined();
  }
  Napi::Value Unref(const Napi::CallbackInfo& info) {
    if (tsfn_ != nullptr) napi_unref_threadsafe_function(info.Env(), tsfn_);
    return info.Env().Undefined();
  }

  napi_env env_ = nullptr;
  bool hooked_ = false;
  std::string dir_;
  std::unique_ptr<DirLock> lock_;  // declared before writer_: the writer checks it
  std::unique_ptr<Writer> writer_;
  napi_threadsafe_function tsfn_ = nullptr;
  std::map<std::string, int> readFds_;
};

Napi::Value ScanReadOnly(const Napi::CallbackInfo& info) {
  try {
    std::string keepName = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
    uint64_t keepEnd = info.Length() > 2 && info[2].IsNumber() ? static_cast<uint64_t>(info[2].As<Napi::Number>().Int64Value()) : 0;
    ScanResult r = ScanDir(info[0].As<Napi::String>().Utf8Value(), false, keepName, keepEnd);
    std::vector<double> records = PackRecords(std::move(r.records));
    return ScanToJs(info.Env(), r, std::move(records));
  } catch (const WalError& e) {
    throw ToJs(info.Env(), e);
  }
}

// crc32c(data, software?, previous?): `previous` is the CRC of the bytes before `data`.
Napi::Value Crc32cJs(const Napi::CallbackInfo& info) {
  Napi::Uint8Array buf = info[0].As<Napi::Uint8Array>();
  bool software = info.Length() > 1 && info[1].ToBoolean().Value();
  uint32_t previous = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().Uint32Value() : 0;
  return Napi::Number::New(info.Env(), Crc32cExtend(previous, buf.Data(), buf.ByteLength(), software));
}

// blockPhase(data): where data's first byte lies within a block of memory (its address
// modulo kDirectBlock). The WAL packs a write where its memory lies as its place in the
// file does, so that the writer writes its whole blocks straight from there.
Napi::Value BlockPhase(const Napi::CallbackInfo& info) {
  Napi::Uint8Array buf = info[0].As<Napi::Uint8Array>();
  return Napi::Number::New(info.Env(), static_cast<double>(reinterpret_cast<uintptr_t>(buf.Data()) % kDirectBlock));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("WalHandle", WalHandle::Define(env));
  exports.Set("scan", Napi::Function::New(env, ScanReadOnly));
  exports.Set("crc32c", Napi::Function::New(env, Crc32cJs));
  exports.Set("blockPhase", Napi::Function::New(env, BlockPhase));
  exports.Set("inlineMaxBytes", Napi::Number::New(env, static_cast<double>(kInlineMaxBytes)));
  return exports;
}

}  // namespace
}  // namespace raftlog

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return raftlog::Init(env, exports); }
NODE_API_MODULE(raftlog_wal, InitModule)
