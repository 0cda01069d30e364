// The WAL's durability rests on Linux semantics: fdatasync flushes the data and
// the metadata needed to read it back (on macOS it does not reach the platter;
// F_FULLFSYNC would be needed), posix_fallocate reserves blocks, and flock locks
// the inode LOCK names. Rather than build something that compiles elsewhere and
// quietly promises less, other systems stop here with the reason.
#pragma once

#if !defined(__linux__)
#error "raftlog's native WAL supports Linux only (glibc, x64 or arm64): it relies on Linux's fdatasync, posix_fallocate and flock semantics. macOS support is planned."
#endif
