#pragma once
// FaultEnv: the default RocksDB file system, except that writes to files
// fail while failWrites(true) is in force (appends, flushes and syncs
// answer an I/O error, as a disk that has gone bad or read-only does).
// The seam through which tests drive RocksStore's handling of failed
// writes (RocksStoreOptions::env).
//
// Thread-safety: failWrites() may be called from any thread.

#include <atomic>
#include <memory>

namespace rocksdb {
class Env;
}  // namespace rocksdb

namespace tern::storage {

class FaultEnv {
 public:
  FaultEnv();
  ~FaultEnv();
  FaultEnv(const FaultEnv&) = delete;
  FaultEnv& operator=(const FaultEnv&) = delete;

  void failWrites(bool fail) { fail_->store(fail); }
  uint64_t failedWrites() const { return failed_->load(); }
  rocksdb::Env* env() const;  // alive as long as this object

 private:
  std::shared_ptr<std::atomic<bool>> fail_;
  std::shared_ptr<std::atomic<uint64_t>> failed_;
  std::unique_ptr<rocksdb::Env> env_;
};

}  // namespace tern::storage
