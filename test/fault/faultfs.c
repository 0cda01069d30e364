/*
 * faultfs: an LD_PRELOAD library for tests. It interposes the libc calls the
 * WAL and the snapshot store make on their files (a write rule matches write,
 * writev, pwrite and pwritev), records every mutating call and every fsync to a
 * log, and fails chosen calls with chosen errors.
 *
 * Environment:
 *   FAULTFS_ROOT   only paths under this prefix are recorded or failed
 *   FAULTFS_LOG    file to append the op log to (JSON, one op per line)
 *   FAULTFS_DATA   file to append the bytes of every recorded write to (each
 *                  write's log line gives their offset there as doff), so that
 *                  a power cut can be replayed from the log
 *   FAULTFS_RULES  rules separated by ';', each op:glob:after:times:ERRNO
 *                  op     open | write | fsync | fdatasync | sync (both) |
 *                         fallocate | rename | unlink | mkdir |
 *                         direct (turning on O_DIRECT with fcntl) |
 *                         dwrite (a write on an O_DIRECT descriptor; "write"
 *                         rules match those too)
 *                  glob   fnmatch pattern on the full path (rename: source)
 *                  after  let this many matching calls pass first
 *                  times  then fail this many (0: every later one)
 *                  ERRNO  EIO, ENOSPC, EMFILE, ENFILE, EDQUOT, EROFS, ENOENT, EINVAL,
 *                         LIE: a sync that reports success without syncing
 *                         (logged as op "lie": a disk that lies), or SLOW: a
 *                         write or sync that succeeds 2 ms late (a slow disk),
 *                         or KILL: the process is killed (SIGKILL) instead of
 *                         making the call (a crash just before it), or SHRINK:
 *                         the file is truncated to 0 bytes as it is read (a
 *                         running writer releasing it; after the mapping, for
 *                         mmap)
 *
 * Log fields: op, path (and to for rename), fd, off and len for writes (what
 * a power-cut replay needs), ret, err (errno name or ""), fault (injected).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_FDS 65536
#define MAX_RULES 32

struct rule {
  char op[16];
  char glob[512];
  long after, times, seen;
  int err;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char *fd_path[MAX_FDS];
static struct rule rules[MAX_RULES];
static int nrules;
static char root[1024];
static size_t root_len;
static int log_fd = -1;
static int data_fd = -1;
static long long data_off;
static long long last_doff = -1; /* set by a write just before record() */
#define ERR_LIE 100000
#define ERR_SLOW 100001
#define ERR_KILL 100002
#define ERR_SHRINK 100003
#define SLOW_US 2000
static long op_seq;

static int (*real_open)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_close)(int);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_posix_fallocate)(int, off_t, off_t);
static int (*real_fallocate)(int, int, off_t, off_t);
static int (*real_rename)(const char *, const char *);
static int (*real_unlink)(const char *);
static int (*real_mkdir)(const char *, mode_t);
static int (*real_rmdir)(const char *);
static int (*real_ftruncate)(int, off_t);
static int (*real_fcntl)(int, int, ...);

static const struct {
  const char *name;
  int value;
} errnos[] = {{"EIO", EIO},       {"ENOSPC", ENOSPC}, {"EMFILE", EMFILE}, {"ENFILE", ENFILE},
              {"EDQUOT", EDQUOT}, {"EROFS", EROFS},   {"ENOENT", ENOENT}, {"EINTR", EINTR},
              {"EEXIST", EEXIST}, {"ENOTEMPTY", ENOTEMPTY}, {"EBADF", EBADF}, {"EAGAIN", EAGAIN}, {"EINVAL", EINVAL},
              {"LIE", ERR_LIE},   {"SLOW", ERR_SLOW}, {"KILL", ERR_KILL}, {"SHRINK", ERR_SHRINK}};

static const char *errno_name(int e) {
  for (size_t i = 0; i < sizeof errnos / sizeof errnos[0]; i++)
    if (errnos[i].value == e) return errnos[i].name;
  return e == 0 ? "" : "OTHER";
}

static void load(void) {
  real_open = dlsym(RTLD_NEXT, "open");
  real_openat = dlsym(RTLD_NEXT, "openat");
  real_close = dlsym(RTLD_NEXT, "close");
  real_write = dlsym(RTLD_NEXT, "write");
  real_pwrite = dlsym(RTLD_NEXT, "pwrite");
  real_pwritev = dlsym(RTLD_NEXT, "pwritev");
  real_writev = dlsym(RTLD_NEXT, "writev");
  real_fsync = dlsym(RTLD_NEXT, "fsync");
  real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
  real_posix_fallocate = dlsym(RTLD_NEXT, "posix_fallocate");
  real_fallocate = dlsym(RTLD_NEXT, "fallocate");
  real_rename = dlsym(RTLD_NEXT, "rename");
  real_unlink = dlsym(RTLD_NEXT, "unlink");
  real_mkdir = dlsym(RTLD_NEXT, "mkdir");
  real_rmdir = dlsym(RTLD_NEXT, "rmdir");
  real_ftruncate = dlsym(RTLD_NEXT, "ftruncate");
  real_fcntl = dlsym(RTLD_NEXT, "fcntl");
}

__attribute__((constructor)) static void init(void) {
  load();
  const char *r = getenv("FAULTFS_ROOT");
  if (r != NULL) {
    snprintf(root, sizeof root, "%s", r);
    root_len = strlen(root);
  }
  const char *l = getenv("FAULTFS_LOG");
  if (l != NULL) log_fd = real_open(l, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  const char *d = getenv("FAULTFS_DATA");
  if (d != NULL) data_fd = real_open(d, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  const char *spec = getenv("FAULTFS_RULES");
  if (spec == NULL) return;
  char *copy = strdup(spec), *save = NULL;
  for (char *tok = strtok_r(copy, ";", &save); tok != NULL && nrules < MAX_RULES; tok = strtok_r(NULL, ";", &save)) {
    struct rule *x = &rules[nrules];
    char err[32] = "";
    /* The glob may not hold ':' (paths in tests do not). */
    if (sscanf(tok, "%15[^:]:%511[^:]:%ld:%ld:%31s", x->op, x->glob, &x->after, &x->times, err) != 5) {
      fprintf(stderr, "faultfs: bad rule '%s'\n", tok);
      abort();
    }
    x->err = 0;
    for (size_t i = 0; i < sizeof errnos / sizeof errnos[0]; i++)
      if (strcmp(errnos[i].name, err) == 0) x->err = errnos[i].value;
    if (x->err == 0) {
      fprintf(stderr, "faultfs: unknown errno '%s'\n", err);
      abort();
    }
    nrules++;
  }
  free(copy);
}

static int in_scope(const char *path) {
  return path != NULL && root_len > 0 && strncmp(path, root, root_len) == 0 &&
         (path[root_len] == '/' || path[root_len] == '\0');
}

/* The errno to inject for this call, or 0. Called with mu held. */
static int fault(const char *op, const char *path) {
  for (int i = 0; i < nrules; i++) {
    struct rule *x = &rules[i];
    int match = strcmp(x->op, op) == 0 ||
                (strcmp(x->op, "sync") == 0 && (strcmp(op, "fsync") == 0 || strcmp(op, "fdatasync") == 0)) ||
                (strcmp(x->op, "write") == 0 && strcmp(op, "dwrite") == 0);
    if (!match || fnmatch(x->glob, path, 0) != 0) continue;
    long k = x->seen++;
    if (k >= x->after && (x->times == 0 || k < x->after + x->times)) {
      if (x->err == ERR_KILL) kill(getpid(), SIGKILL);
      return x->err;
    }
  }
  return 0;
}

static void json_str(char *out, size_t cap, const char *s) {
  size_t n = 0;
  for (; *s != '\0' && n + 3 < cap; s++) {
    if (*s == '"' || *s == '\\') out[n++] = '\\';
    out[n++] = *s;
  }
  out[n] = '\0';
}

/* Called with mu held. */
static void record(const char *op, const char *path, const char *to, int fd, long long off, long long len,
                   long long ret, int err, int injected) {
  if (log_fd < 0) return;
  char p[2048], t[2048] = "", line[5120];
  json_str(p, sizeof p, path);
  if (to != NULL) json_str(t, sizeof t, to);
  int n = snprintf(line, sizeof line,
                   "{\"n\":%ld,\"op\":\"%s\",\"path\":\"%s\"%s%s%s,\"fd\":%d,\"off\":%lld,\"len\":%lld,\"ret\":%lld,"
                   "\"err\":\"%s\",\"fault\":%s,\"doff\":%lld}\n",
                   ++op_seq, op, p, to != NULL ? ",\"to\":\"" : "", t, to != NULL ? "\"" : "", fd, off, len, ret,
                   errno_name(err), injected ? "true" : "false", last_doff);
  last_doff = -1;
  if (n > 0) real_write(log_fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static char *absolute(int dirfd, const char *path) {
  if (path == NULL) return NULL;
  if (path[0] == '/') return strdup(path);
  char base[4096];
  if (dirfd == AT_FDCWD) {
    if (getcwd(base, sizeof base) == NULL) return strdup(path);
  } else if (dirfd >= 0 && dirfd < MAX_FDS && fd_path[dirfd] != NULL) {
    snprintf(base, sizeof base, "%s", fd_path[dirfd]);
  } else {
    return strdup(path);
  }
  char *out = malloc(strlen(base) + strlen(path) + 2);
  sprintf(out, "%s/%s", base, path);
  return out;
}

/* Copies fd's path into buf if it is in scope. Under mu: a rename may be rewriting it. */
static int scoped(int fd, char *buf, size_t cap) {
  if (fd < 0 || fd >= MAX_FDS || root_len == 0) return 0;
  pthread_mutex_lock(&mu);
  int in = in_scope(fd_path[fd]);
  if (in) snprintf(buf, cap, "%s", fd_path[fd]);
  pthread_mutex_unlock(&mu);
  return in;
}

static int do_openat(int dirfd, const char *path, int flags, mode_t mode) {
  if (real_open == NULL) load();
  char *abs = absolute(dirfd, path);
  if (!in_scope(abs)) {
    free(abs);
    return dirfd == AT_FDCWD ? real_open(path, flags, mode) : real_openat(dirfd, path, flags, mode);
  }
  pthread_mutex_lock(&mu);
  int err = fault("open", abs), ret, injected = err != 0;
  if (injected) {
    ret = -1;
  } else {
    ret = real_openat(dirfd, path, flags, mode);
    err = ret < 0 ? errno : 0;
  }
  if (ret >= 0 && ret < MAX_FDS) {
    free(fd_path[ret]);
    fd_path[ret] = strdup(abs);
  }
  /* Only opens that can change the file system are recorded. */
  if ((flags & (O_CREAT | O_TRUNC)) != 0 || err != 0)
    record((flags & O_CREAT) ? "create" : "open", abs, NULL, ret, -1, -1, ret, err, injected);
  pthread_mutex_unlock(&mu);
  free(abs);
  errno = err;
  return ret;
}

static mode_t mode_arg(int flags, va_list ap) {
  return (flags & (O_CREAT | O_TMPFILE)) != 0 ? (mode_t)va_arg(ap, int) : 0;
}

int open(const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t m = mode_arg(flags, ap);
  va_end(ap);
  return do_openat(AT_FDCWD, path, flags, m);
}
int open64(const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t m = mode_arg(flags, ap);
  va_end(ap);
  return do_openat(AT_FDCWD, path, flags, m);
}
int openat(int dirfd, const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t m = mode_arg(flags, ap);
  va_end(ap);
  return do_openat(dirfd, path, flags, m);
}
int openat64(int dirfd, const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t m = mode_arg(flags, ap);
  va_end(ap);
  return do_openat(dirfd, path, flags, m);
}
int __open_2(const char *path, int flags) { return do_openat(AT_FDCWD, path, flags, 0); }
int __open64_2(const char *path, int flags) { return do_openat(AT_FDCWD, path, flags, 0); }
int __openat_2(int dirfd, const char *path, int flags) { return do_openat(dirfd, path, flags, 0); }
int __openat64_2(int dirfd, const char *path, int flags) { return do_openat(dirfd, path, flags, 0); }
int creat(const char *path, mode_t mode) { return do_openat(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode); }
int creat64(const char *path, mode_t mode) { return do_openat(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode); }

int close(int fd) {
  if (real_close == NULL) load();
  if (fd >= 0 && fd < MAX_FDS && root_len > 0) {
    pthread_mutex_lock(&mu);
    free(fd_path[fd]);
    fd_path[fd] = NULL;
    pthread_mutex_unlock(&mu);
  }
  return real_close(fd);
}

/* Appends the first n bytes of iov to the data file; returns their offset there. Called with mu held. */
static long long dump(const struct iovec *iov, int cnt, ssize_t n) {
  if (data_fd < 0 || n <= 0) return -1;
  long long at = data_off;
  for (int i = 0; i < cnt && n > 0; i++) {
    size_t k = iov[i].iov_len < (size_t)n ? iov[i].iov_len : (size_t)n;
    for (size_t done = 0; done < k;) {
      ssize_t w = real_write(data_fd, (const char *)iov[i].iov_base + done, k - done);
      if (w <= 0) abort(); /* a test harness that cannot record must not pretend it did */
      done += (size_t)w;
    }
    n -= (ssize_t)k;
    data_off += (long long)k;
  }
  return at;
}

/* A write-like call on fd: len bytes at off (-1: the current position), from iov. */
#define WRITE_CALL(op, fd, off, len, call, iov, cnt)             \
  do {                                                           \
    if (real_write == NULL) load();                              \
    char p_[4096];                                               \
    if (!scoped(fd, p_, sizeof p_)) return call;                 \
    pthread_mutex_lock(&mu);                                     \
    long long at_ = (off) >= 0 ? (long long)(off) : (long long)lseek(fd, 0, SEEK_CUR); \
    int err_ = fault((real_fcntl(fd, F_GETFL) & O_DIRECT) ? "dwrite" : "write", p_); \
    ssize_t ret_ = -1;                                           \
    if (err_ == ERR_SLOW) {                                      \
      usleep(SLOW_US);                                           \
      err_ = 0;                                                  \
    }                                                            \
    if (err_ == 0) {                                             \
      ret_ = call;                                               \
      err_ = ret_ < 0 ? errno : 0;                               \
      last_doff = dump(iov, cnt, ret_);                          \
      record(op, p_, NULL, fd, at_, (long long)(len), ret_, err_, 0); \
    } else {                                                     \
      record(op, p_, NULL, fd, at_, (long long)(len), -1, err_, 1); \
    }                                                            \
    pthread_mutex_unlock(&mu);                                   \
    errno = err_;                                                \
    return ret_;                                                 \
  } while (0)

ssize_t write(int fd, const void *buf, size_t n) {
  struct iovec one = {(void *)buf, n};
  WRITE_CALL("write", fd, -1, n, real_write(fd, buf, n), &one, 1);
}
ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
  struct iovec one = {(void *)buf, n};
  WRITE_CALL("pwrite", fd, off, n, real_pwrite(fd, buf, n, off), &one, 1);
}
ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) {
  struct iovec one = {(void *)buf, n};
  WRITE_CALL("pwrite", fd, off, n, real_pwrite(fd, buf, n, off), &one, 1);
}
static size_t iov_len(const struct iovec *iov, int n) {
  size_t total = 0;
  for (int i = 0; i < n; i++) total += iov[i].iov_len;
  return total;
}
ssize_t writev(int fd, const struct iovec *iov, int n) {
  WRITE_CALL("writev", fd, -1, iov_len(iov, n), real_writev(fd, iov, n), iov, n);
}
ssize_t pwritev(int fd, const struct iovec *iov, int n, off_t off) {
  WRITE_CALL("pwritev", fd, off, iov_len(iov, n), real_pwritev(fd, iov, n, off), iov, n);
}
ssize_t pwritev64(int fd, const struct iovec *iov, int n, off_t off) {
  WRITE_CALL("pwritev", fd, off, iov_len(iov, n), real_pwritev(fd, iov, n, off), iov, n);
}

static int sync_call(const char *op, int fd, int (*real)(int)) {
  char p[4096];
  if (!scoped(fd, p, sizeof p)) return real(fd);
  pthread_mutex_lock(&mu);
  int err = fault(op, p), ret = -1, injected = err != 0;
  if (err == ERR_SLOW) {
    usleep(SLOW_US);
    err = injected = 0;
  }
  if (err == ERR_LIE) {
    record("lie", p, NULL, fd, -1, -1, 0, 0, 1);
    pthread_mutex_unlock(&mu);
    errno = 0;
    return 0;
  }
  if (!injected) {
    ret = real(fd);
    err = ret < 0 ? errno : 0;
  }
  record(op, p, NULL, fd, -1, -1, ret, err, injected);
  pthread_mutex_unlock(&mu);
  errno = err;
  return ret;
}
int fsync(int fd) {
  if (real_fsync == NULL) load();
  return sync_call("fsync", fd, real_fsync);
}
int fdatasync(int fd) {
  if (real_fdatasync == NULL) load();
  return sync_call("fdatasync", fd, real_fdatasync);
}

/* posix_fallocate returns the error instead of setting errno. */
static int fallocate_call(int fd, int mode, off_t off, off_t len, int posix) {
  if (real_posix_fallocate == NULL) load();
  char p[4096];
  if (!scoped(fd, p, sizeof p)) {
    if (posix) return real_posix_fallocate(fd, off, len);
    return real_fallocate(fd, mode, off, len);
  }
  pthread_mutex_lock(&mu);
  int err = fault("fallocate", p), ret, injected = err != 0;
  if (!injected) {
    if (posix) {
      err = real_posix_fallocate(fd, off, len);
    } else {
      ret = real_fallocate(fd, mode, off, len);
      err = ret < 0 ? errno : 0;
    }
  }
  record("fallocate", p, NULL, fd, off, len, err == 0 ? 0 : -1, err, injected);
  pthread_mutex_unlock(&mu);
  if (posix) return err;
  errno = err;
  return err == 0 ? 0 : -1;
}
int posix_fallocate(int fd, off_t off, off_t len) { return fallocate_call(fd, 0, off, len, 1); }
int posix_fallocate64(int fd, off_t off, off_t len) { return fallocate_call(fd, 0, off, len, 1); }
int fallocate(int fd, int mode, off_t off, off_t len) { return fallocate_call(fd, mode, off, len, 0); }
int fallocate64(int fd, int mode, off_t off, off_t len) { return fallocate_call(fd, mode, off, len, 0); }

static int ftruncate_call(int fd, off_t len) {
  if (real_ftruncate == NULL) load();
  char p[4096];
  if (!scoped(fd, p, sizeof p)) return real_ftruncate(fd, len);
  pthread_mutex_lock(&mu);
  int ret = real_ftruncate(fd, len), err = ret < 0 ? errno : 0;
  record("ftruncate", p, NULL, fd, -1, len, ret, err, 0);
  pthread_mutex_unlock(&mu);
  errno = err;
  return ret;
}
/* fcntl: only turning on O_DIRECT is recorded (op "direct") or failed; the rest passes through. */
static int fcntl_call(int fd, int cmd, va_list ap) {
  if (real_fcntl == NULL) load();
  void *arg = va_arg(ap, void *); /* an int or a pointer, as glibc's own wrapper reads it */
  char p[4096];
  if (cmd != F_SETFL || ((long)arg & O_DIRECT) == 0 || !scoped(fd, p, sizeof p)) return real_fcntl(fd, cmd, arg);
  pthread_mutex_lock(&mu);
  int err = fault("direct", p), ret = -1, injected = err != 0;
  if (!injected) {
    ret = real_fcntl(fd, cmd, arg);
    err = ret < 0 ? errno : 0;
  }
  record("direct", p, NULL, fd, -1, -1, ret, err, injected);
  pthread_mutex_unlock(&mu);
  errno = err;
  return ret;
}
int fcntl(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  int r = fcntl_call(fd, cmd, ap);
  va_end(ap);
  return r;
}
int fcntl64(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  int r = fcntl_call(fd, cmd, ap);
  va_end(ap);
  return r;
}

int ftruncate(int fd, off_t len) { return ftruncate_call(fd, len); }

/* read: pread and mmap of a file, only ever shrunk (SHRINK), never failed or logged. */
static void shrink_if_told(int fd) {
  char p[4096];
  if (!scoped(fd, p, sizeof p)) return;
  pthread_mutex_lock(&mu);
  int err = fault("read", p);
  pthread_mutex_unlock(&mu);
  if (err == ERR_SHRINK) truncate(p, 0); /* by path: the reader's descriptor is read-only */
}
ssize_t pread(int fd, void *buf, size_t n, off_t off) {
  shrink_if_told(fd);
  return syscall(SYS_pread64, fd, buf, n, off);
}
ssize_t pread64(int fd, void *buf, size_t n, off_t off) { return pread(fd, buf, n, off); }
/* Through the system call: the loader and malloc map memory before this library is set up. */
void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  void *at = (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
  if (fd >= 0 && at != MAP_FAILED) shrink_if_told(fd);
  return at;
}
void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off) { return mmap(addr, len, prot, flags, fd, off); }
int ftruncate64(int fd, off_t len) { return ftruncate_call(fd, len); }

/* rename, unlink, mkdir, rmdir: path calls. */
static int path_call(const char *op, const char *path, const char *to, int (*call)(const char *, const char *, mode_t),
                     mode_t mode) {
  char *abs = absolute(AT_FDCWD, path), *abs_to = to != NULL ? absolute(AT_FDCWD, to) : NULL;
  if (!in_scope(abs) && !in_scope(abs_to)) {
    free(abs);
    free(abs_to);
    return call(path, to, mode);
  }
  pthread_mutex_lock(&mu);
  int err = fault(op, abs), ret = -1, injected = err != 0;
  if (!injected) {
    ret = call(path, to, mode);
    err = ret < 0 ? errno : 0;
  }
  if (ret == 0 && to != NULL) {
    /* Open fds follow the file to its new name. */
    size_t n = strlen(abs);
    for (int fd = 0; fd < MAX_FDS; fd++) {
      char *p = fd_path[fd];
      if (p == NULL || strncmp(p, abs, n) != 0 || (p[n] != '\0' && p[n] != '/')) continue;
      char *q = malloc(strlen(abs_to) + strlen(p + n) + 1);
      sprintf(q, "%s%s", abs_to, p + n);
      free(p);
      fd_path[fd] = q;
    }
  }
  record(op, abs, abs_to, -1, -1, -1, ret, err, injected);
  pthread_mutex_unlock(&mu);
  free(abs);
  free(abs_to);
  errno = err;
  return ret;
}
static int do_rename(const char *a, const char *b, mode_t m) {
  (void)m;
  if (real_rename == NULL) load();
  return real_rename(a, b);
}
static int do_unlink(const char *a, const char *b, mode_t m) {
  (void)b, (void)m;
  if (real_unlink == NULL) load();
  return real_unlink(a);
}
static int do_mkdir(const char *a, const char *b, mode_t m) {
  (void)b;
  if (real_mkdir == NULL) load();
  return real_mkdir(a, m);
}
static int do_rmdir(const char *a, const char *b, mode_t m) {
  (void)b, (void)m;
  if (real_rmdir == NULL) load();
  return real_rmdir(a);
}
int rename(const char *from, const char *to) { return path_call("rename", from, to, do_rename, 0); }
int unlink(const char *path) { return path_call("unlink", path, NULL, do_unlink, 0); }
int mkdir(const char *path, mode_t mode) { return path_call("mkdir", path, NULL, do_mkdir, mode); }
int rmdir(const char *path) { return path_call("rmdir", path, NULL, do_rmdir, 0); }
