// The RWF_NOWAIT file system and RocksStore under storage::NonBlockingReads:
// data in the page cache is served inside a scope, data that is not is
// refused (never waited for), and the same read outside a scope is served.

#include "storage/rocksdb/nowait_file_system.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "storage/nonblocking.h"
#include "storage/rocksdb/rocks_store.h"
#include "tests/support/temp_dir.h"
#include "tests/unit/storage/rocksdb/store_access.h"

namespace tern::storage {
namespace {

namespace fs = std::filesystem;

// Drops the file's pages from the page cache (they are clean: synced).
void dropFromPageCache(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0) << path;
  ::fdatasync(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

class NoWaitFileSystemTest : public ::testing::Test {
 protected:
  std::unique_ptr<rocksdb::FSRandomAccessFile> openFile(const std::string& path) {
    std::unique_ptr<rocksdb::FSRandomAccessFile> f;
    auto s = fs_->NewRandomAccessFile(path, rocksdb::FileOptions(), &f, nullptr);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return f;
  }
  testing::TempDir dir_;
  std::shared_ptr<rocksdb::FileSystem> fs_ = nowaitFileSystem(rocksdb::FileSystem::Default());
};

TEST_F(NoWaitFileSystemTest, ServesResidentDataAndRefusesTheRestInsideAScope) {
  std::string path = dir_.sub("data");
  std::string content(1 << 20, 'x');
  for (size_t i = 0; i < content.size(); i += 4096) content[i] = static_cast<char>('a' + i % 26);
  std::ofstream(path, std::ios::binary) << content;
  dropFromPageCache(path);
  auto f = openFile(path);
  ASSERT_TRUE(f);
  std::string scratch(8192, '\0');
  rocksdb::Slice got;
  {
    NonBlockingReads scope;
    auto s = f->Read(4096 * 100, 8192, rocksdb::IOOptions(), &got, scratch.data(), nullptr);
    if (s.ok()) GTEST_SKIP() << "the page cache kept the file; nothing to refuse here";
    EXPECT_TRUE(s.IsBusy()) << s.ToString();
    EXPECT_TRUE(scope.refused());
    // Prefetching is a hint, and a hint that may block is skipped.
    EXPECT_TRUE(f->Prefetch(0, 8192, rocksdb::IOOptions(), nullptr).ok());
  }
  // Outside a scope the same read waits for the disk.
  ASSERT_TRUE(f->Read(4096 * 100, 8192, rocksdb::IOOptions(), &got, scratch.data(), nullptr).ok());
  EXPECT_EQ(got.ToString(), content.substr(4096 * 100, 8192));
  {
    NonBlockingReads scope;  // now resident
    auto s = f->Read(4096 * 100, 8192, rocksdb::IOOptions(), &got, scratch.data(), nullptr);
    EXPECT_TRUE(s.ok()) << s.ToString();
    EXPECT_FALSE(scope.refused());
    EXPECT_EQ(got.ToString(), content.substr(4096 * 100, 8192));
  }
}

TEST_F(NoWaitFileSystemTest, AReadPastTheEndIsShortNotRefused) {
  std::string path = dir_.sub("small");
  std::ofstream(path, std::ios::binary) << "0123456789";
  auto f = openFile(path);
  std::string scratch(100, '\0');
  rocksdb::Slice got;
  ASSERT_TRUE(f->Read(0, 10, rocksdb::IOOptions(), &got, scratch.data(), nullptr).ok());
  NonBlockingReads scope;
  auto s = f->Read(4, 50, rocksdb::IOOptions(), &got, scratch.data(), nullptr);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(got.ToString(), "456789");
  EXPECT_FALSE(scope.refused());
}

TEST_F(NoWaitFileSystemTest, RocksStoreLookupsInsideAScopeNeverWaitForTheDisk) {
  using store_access::get;
  using store_access::key;
  RocksStoreOptions o;
  o.path = dir_.sub("store");
  o.background = false;
  std::string body(20000, 'b');
  {
    auto st = RocksStore::open(o);
    ASSERT_TRUE(st.ok()) << st.status().toString();
    EXPECT_TRUE((*st)->honoursNonBlockingReads());
    ASSERT_TRUE(store_access::put(**st, key("http://a.example/x"), body).isOk());
  }  // closing flushes the memtables to table files
  auto st = RocksStore::open(o);
  ASSERT_TRUE(st.ok()) << st.status().toString();
  for (const auto& e : fs::recursive_directory_iterator(o.path)) {
    if (e.path().extension() == ".sst") dropFromPageCache(e.path());
  }
  bool refused;
  {
    NonBlockingReads scope;
    std::string got = get(**st, key("http://a.example/x"));
    refused = scope.refused();
    if (!refused) {
      EXPECT_EQ(got, body);  // the page cache kept it
    }
  }
  if (!refused) GTEST_SKIP() << "the page cache kept the table files; nothing to refuse here";
  EXPECT_EQ(get(**st, key("http://a.example/x")), body);  // outside a scope: waits, and is served
  EXPECT_EQ((*st)->stats().corrupt_objects, 0u);          // a refusal is not a corruption
  NonBlockingReads scope;
  EXPECT_EQ(get(**st, key("http://a.example/x")), body);
  EXPECT_FALSE(scope.refused());
}

TEST(NonBlockingReadsTest, RefusalsCountOnlyInsideAScope) {
  EXPECT_FALSE(NonBlockingReads::active());
  NonBlockingReads::refuse();  // outside: nothing to record
  NonBlockingReads scope;
  EXPECT_TRUE(NonBlockingReads::active());
  EXPECT_FALSE(scope.refused());
  NonBlockingReads::refuse();
  EXPECT_TRUE(scope.refused());
}

}  // namespace
}  // namespace tern::storage
