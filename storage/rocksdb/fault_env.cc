#include "storage/rocksdb/fault_env.h"

#include <rocksdb/env.h>

namespace tern::storage {
namespace {

using Flag = std::shared_ptr<std::atomic<bool>>;
using Count = std::shared_ptr<std::atomic<uint64_t>>;

class FaultFile final : public rocksdb::WritableFileWrapper {
 public:
  FaultFile(std::unique_ptr<rocksdb::WritableFile> target, Flag fail, Count failed)
      : rocksdb::WritableFileWrapper(target.get()),
        owned_(std::move(target)),
        fail_(std::move(fail)),
        failed_(std::move(failed)) {}

  rocksdb::Status Append(const rocksdb::Slice& data) override {
    if (auto s = check(); !s.ok()) return s;
    return WritableFileWrapper::Append(data);
  }
  rocksdb::Status Append(const rocksdb::Slice& data,
                         const rocksdb::DataVerificationInfo& info) override {
    if (auto s = check(); !s.ok()) return s;
    return WritableFileWrapper::Append(data, info);
  }
  rocksdb::Status Flush() override {
    if (auto s = check(); !s.ok()) return s;
    return WritableFileWrapper::Flush();
  }
  rocksdb::Status Sync() override {
    if (auto s = check(); !s.ok()) return s;
    return WritableFileWrapper::Sync();
  }
  rocksdb::Status Fsync() override {
    if (auto s = check(); !s.ok()) return s;
    return WritableFileWrapper::Fsync();
  }

 private:
  rocksdb::Status check() {
    if (!fail_->load()) return rocksdb::Status::OK();
    failed_->fetch_add(1);
    return rocksdb::Status::IOError("injected write failure");
  }

  std::unique_ptr<rocksdb::WritableFile> owned_;
  Flag fail_;
  Count failed_;
};

class Env final : public rocksdb::EnvWrapper {
 public:
  Env(Flag fail, Count failed)
      : rocksdb::EnvWrapper(rocksdb::Env::Default()),
        fail_(std::move(fail)),
        failed_(std::move(failed)) {}
  const char* Name() const override { return "TernFaultEnv"; }

  rocksdb::Status NewWritableFile(const std::string& name,
                                  std::unique_ptr<rocksdb::WritableFile>* out,
                                  const rocksdb::EnvOptions& options) override {
    std::unique_ptr<rocksdb::WritableFile> file;
    auto s = EnvWrapper::NewWritableFile(name, &file, options);
    if (s.ok()) *out = std::make_unique<FaultFile>(std::move(file), fail_, failed_);
    return s;
  }
  rocksdb::Status ReopenWritableFile(const std::string& name,
                                     std::unique_ptr<rocksdb::WritableFile>* out,
                                     const rocksdb::EnvOptions& options) override {
    std::unique_ptr<rocksdb::WritableFile> file;
    auto s = EnvWrapper::ReopenWritableFile(name, &file, options);
    if (s.ok()) *out = std::make_unique<FaultFile>(std::move(file), fail_, failed_);
    return s;
  }

 private:
  Flag fail_;
  Count failed_;
};

}  // namespace

FaultEnv::FaultEnv()
    : fail_(std::make_shared<std::atomic<bool>>(false)),
      failed_(std::make_shared<std::atomic<uint64_t>>(0)),
      env_(std::make_unique<Env>(fail_, failed_)) {}

FaultEnv::~FaultEnv() = default;

rocksdb::Env* FaultEnv::env() const { return env_.get(); }

}  // namespace tern::storage
