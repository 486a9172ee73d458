#pragma once
// A RocksDB FileSystem whose random reads honour storage::NonBlockingReads:
// inside a scope, a read is made with preadv2(RWF_NOWAIT) and served only if
// the page cache holds all of it; otherwise it fails (IOStatus::Busy) and
// the scope records the refusal. Outside a scope, reads are the base file
// system's. Where the kernel or the file system does not support RWF_NOWAIT,
// every read in a scope is refused: correct, only without the fast path.

#include <rocksdb/file_system.h>

#include <memory>

namespace tern::storage {

std::shared_ptr<rocksdb::FileSystem> nowaitFileSystem(std::shared_ptr<rocksdb::FileSystem> base);

}  // namespace tern::storage
