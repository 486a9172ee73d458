#include "storage/rocksdb/nowait_file_system.h"

#include <fcntl.h>
#include <unistd.h>

#include "storage/nonblocking.h"

namespace tern::storage {
namespace {

class NoWaitFile final : public rocksdb::FSRandomAccessFileOwnerWrapper {
 public:
  NoWaitFile(std::unique_ptr<rocksdb::FSRandomAccessFile> base, int fd)
      : FSRandomAccessFileOwnerWrapper(std::move(base)), fd_(fd) {}
  ~NoWaitFile() override {
    if (fd_ >= 0) ::close(fd_);
  }

  rocksdb::IOStatus Read(uint64_t offset, size_t n, const rocksdb::IOOptions& options,
                         rocksdb::Slice* result, char* scratch,
                         rocksdb::IODebugContext* dbg) const override {
    if (!NonBlockingReads::active())
      return target()->Read(offset, n, options, result, scratch, dbg);
    return readNoWait(offset, n, result, scratch);
  }
  rocksdb::IOStatus MultiRead(rocksdb::FSReadRequest* reqs, size_t num_reqs,
                              const rocksdb::IOOptions& options,
                              rocksdb::IODebugContext* dbg) override {
    if (!NonBlockingReads::active()) return target()->MultiRead(reqs, num_reqs, options, dbg);
    for (size_t i = 0; i < num_reqs; ++i) {
      reqs[i].status = readNoWait(reqs[i].offset, reqs[i].len, &reqs[i].result, reqs[i].scratch);
    }
    return rocksdb::IOStatus::OK();
  }
  rocksdb::IOStatus Prefetch(uint64_t offset, size_t n, const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override {
    if (NonBlockingReads::active())
      return rocksdb::IOStatus::OK();  // a hint; readahead(2) may block
    return target()->Prefetch(offset, n, options, dbg);
  }

 private:
  rocksdb::IOStatus readNoWait(uint64_t offset, size_t n, rocksdb::Slice* result,
                               char* scratch) const {
    auto done = readResident(fd_, offset, scratch, n);
    if (!done) return rocksdb::IOStatus::Busy("not in the page cache");
    *result = rocksdb::Slice(scratch, *done);
    return rocksdb::IOStatus::OK();
  }

  int fd_;
};

class NoWaitFileSystem final : public rocksdb::FileSystemWrapper {
 public:
  explicit NoWaitFileSystem(const std::shared_ptr<rocksdb::FileSystem>& base)
      : FileSystemWrapper(base) {}
  const char* Name() const override { return "TernNoWaitFileSystem"; }

  rocksdb::IOStatus NewRandomAccessFile(const std::string& fname,
                                        const rocksdb::FileOptions& options,
                                        std::unique_ptr<rocksdb::FSRandomAccessFile>* result,
                                        rocksdb::IODebugContext* dbg) override {
    std::unique_ptr<rocksdb::FSRandomAccessFile> base;
    rocksdb::IOStatus s = target()->NewRandomAccessFile(fname, options, &base, dbg);
    if (!s.ok()) return s;
    // A descriptor of our own: the base file's is not reachable. Without one
    // (direct I/O, or the open failing) every read in a scope is refused.
    int fd = options.use_direct_reads ? -1 : ::open(fname.c_str(), O_RDONLY | O_CLOEXEC);
    *result = std::make_unique<NoWaitFile>(std::move(base), fd);
    return s;
  }
};

}  // namespace

std::shared_ptr<rocksdb::FileSystem> nowaitFileSystem(std::shared_ptr<rocksdb::FileSystem> base) {
  return std::make_shared<NoWaitFileSystem>(base);
}

}  // namespace tern::storage
