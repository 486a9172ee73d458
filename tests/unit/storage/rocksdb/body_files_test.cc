// Bodies in body files (storage/rocksdb/body_files.h) through RocksStore:
// damage and loss are misses, removed bodies give their space back, bytes
// no record holds after a crash are freed at the next open, objects of
// either layout stay readable, and reads honour NonBlockingReads.

#include "storage/rocksdb/body_files.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "storage/format/format.h"
#include "storage/nonblocking.h"
#include "storage/rocksdb/rocks_store.h"
#include "tests/support/temp_dir.h"
#include "tests/unit/storage/rocksdb/store_access.h"

namespace tern::storage {
namespace {

using store_access::get;
using store_access::key;
using store_access::put;

namespace fs = std::filesystem;

constexpr uint64_t kAlign = format::kBodyAlignment;

class BodyFilesTest : public ::testing::Test {
 protected:
  RocksStoreOptions opts() {
    RocksStoreOptions o;
    o.path = dir_.sub("store");
    o.chunk_bytes = 100;
    o.background = false;
    o.min_file_body_bytes = 0;  // the small bodies here go to files too
    return o;
  }
  std::unique_ptr<RocksStore> open(const RocksStoreOptions& o) {
    return store_access::openStore(o);
  }
  std::string bodiesDir() { return opts().path + "/" + std::string(format::kBodyFilesDir); }
  std::vector<std::string> segments() {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(bodiesDir())) out.push_back(e.path().string());
    std::sort(out.begin(), out.end());
    return out;
  }
  static void overwrite(const std::string& path, uint64_t offset, std::string_view bytes) {
    int fd = ::open(path.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0) << path;
    ASSERT_EQ(::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset)),
              static_cast<ssize_t>(bytes.size()));
    ::close(fd);
  }
  static std::string readAt(const std::string& path, uint64_t offset, size_t n) {
    std::string out(n, '?');
    int fd = ::open(path.c_str(), O_RDONLY);
    EXPECT_GE(fd, 0) << path;
    ssize_t r = ::pread(fd, out.data(), n, static_cast<off_t>(offset));
    ::close(fd);
    out.resize(r < 0 ? 0 : static_cast<size_t>(r));
    return out;
  }
  static uint64_t allocatedBlocks(const std::string& path) {
    struct stat sb;
    EXPECT_EQ(::stat(path.c_str(), &sb), 0) << path;
    return static_cast<uint64_t>(sb.st_blocks);
  }
  testing::TempDir dir_;
};

TEST_F(BodyFilesTest, BodiesAreWrittenToASegmentOnceAndAligned) {
  auto st = open(opts());
  ASSERT_TRUE(put(*st, key("http://a.example/1"), std::string(250, 'a')).isOk());
  ASSERT_TRUE(put(*st, key("http://a.example/2"), std::string(50, 'b')).isOk());
  auto files = segments();
  ASSERT_EQ(files.size(), 1u) << "one writer at a time appends to one segment";
  EXPECT_EQ(readAt(files[0], 0, 250), std::string(250, 'a'));
  EXPECT_EQ(readAt(files[0], kAlign, 50), std::string(50, 'b'));
  EXPECT_EQ(get(*st, key("http://a.example/1")), std::string(250, 'a'));
  EXPECT_EQ(get(*st, key("http://a.example/2")), std::string(50, 'b'));
  // No chunk went through RocksDB: nothing is pending, nothing to clean.
  EXPECT_EQ(st->openReport().pending_removed, 0u);
}

TEST_F(BodyFilesTest, DamagedBytesAreACorruptionAndTheObjectIsRemoved) {
  auto st = open(opts());
  ASSERT_TRUE(put(*st, key("http://a.example/many"), std::string(250, 'm')).isOk());  // 3 chunks
  ASSERT_TRUE(put(*st, key("http://a.example/one"), std::string(50, 'o')).isOk());    // 1 chunk
  ASSERT_TRUE(put(*st, key("http://a.example/last"), std::string(250, 'l')).isOk());
  const std::string seg = segments().at(0);
  overwrite(seg, 150, "X");               // the second chunk of "many"
  overwrite(seg, kAlign + 10, "X");       // "one", checked by its body hash
  overwrite(seg, 2 * kAlign + 249, "X");  // the last byte of "last"
  for (const char* url :
       {"http://a.example/many", "http://a.example/one", "http://a.example/last"}) {
    std::string got = get(*st, key(url));
    EXPECT_NE(got.find("Corruption"), std::string::npos) << url << ": " << got;
    EXPECT_EQ(get(*st, key(url)), "<miss>") << url;
  }
  EXPECT_EQ(st->stats().corrupt_objects, 3u);
  EXPECT_EQ(st->stats().objects, 0u);
  ASSERT_TRUE(put(*st, key("http://a.example/one"), std::string(50, 'o')).isOk());
  EXPECT_EQ(get(*st, key("http://a.example/one")), std::string(50, 'o'));
}

TEST_F(BodyFilesTest, AFileCutShortOrLostIsAMiss) {
  {
    auto st = open(opts());
    ASSERT_TRUE(put(*st, key("http://a.example/short"), std::string(250, 's')).isOk());
    ASSERT_EQ(::truncate(segments().at(0).c_str(), 120), 0);
    std::string got = get(*st, key("http://a.example/short"));
    EXPECT_NE(got.find("Corruption"), std::string::npos) << got;
    EXPECT_EQ(get(*st, key("http://a.example/short")), "<miss>");
    EXPECT_EQ(st->stats().corrupt_objects, 1u);
    ASSERT_TRUE(put(*st, key("http://a.example/lost"), std::string(250, 'l')).isOk());
  }
  for (const auto& f : segments()) fs::remove(f);
  auto st = open(opts());
  EXPECT_EQ(get(*st, key("http://a.example/lost")), "<miss>");
  EXPECT_EQ(st->stats().corrupt_objects, 1u);
  EXPECT_EQ(st->stats().objects, 0u);
  ASSERT_TRUE(put(*st, key("http://a.example/lost"), std::string(250, 'l')).isOk());
  EXPECT_EQ(get(*st, key("http://a.example/lost")), std::string(250, 'l'));
}

TEST_F(BodyFilesTest, RemovedBodiesGiveTheirSpaceBackAndEmptySegmentsGo) {
  RocksStoreOptions o = opts();
  o.body_segment_bytes = 2 * kAlign;  // two bodies of up to 4 KiB per segment
  auto st = open(o);
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(put(*st, key("http://a.example/" + std::to_string(i)), std::string(1000, 'x'),
                    {"t" + std::to_string(i / 2)})
                    .isOk());
  }
  auto files = segments();
  ASSERT_EQ(files.size(), 2u);
  // A removal punches its range, to the block where the next body starts:
  // the bytes read as zeros at once, and the block is given back.
  const uint64_t blocks = allocatedBlocks(files[1]);
  ASSERT_TRUE(st->removeUrl(*CacheKey::fromUrl("http://a.example/2")).isOk());
  EXPECT_EQ(readAt(files[1], 0, 1000), std::string(1000, '\0'));
  EXPECT_LT(allocatedBlocks(files[1]), blocks);
  EXPECT_EQ(get(*st, key("http://a.example/3")), std::string(1000, 'x'));
  // A full segment with nothing live is removed: here through a purge's
  // clean-up.
  ASSERT_TRUE(st->applyPurge({1, PurgeMode::kHard, {{SelectorKind::kTag, "t0"}}}).isOk());
  EXPECT_EQ(segments().size(), 2u) << "a purge is a marker; the clean-up removes";
  st->runMaintenanceForTesting();
  EXPECT_EQ(segments(), std::vector<std::string>{files[1]});
  EXPECT_EQ(get(*st, key("http://a.example/3")), std::string(1000, 'x'));
  // Replacing an object frees the old body too.
  ASSERT_TRUE(put(*st, key("http://a.example/3"), std::string(1000, 'y')).isOk());
  EXPECT_EQ(get(*st, key("http://a.example/3")), std::string(1000, 'y'));
  const auto left = segments();
  EXPECT_EQ(std::find(left.begin(), left.end(), files[1]), left.end());
  EXPECT_EQ(left.size(), 1u);
}

// A child writes bodies and dies (as a crash would) with one object
// committed and another half written; in a second segment, only a half
// written one. The next open keeps the committed body and frees the rest.
TEST_F(BodyFilesTest, BytesNoRecordHoldsAreFreedAtTheNextOpen) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto st = RocksStore::open(opts());
    if (!st.ok()) _exit(1);
    if (!put(**st, key("http://a.example/kept"), std::string(1000, 'k')).isOk()) _exit(2);
    auto w1 = (*st)->beginWrite(key("http://a.example/half"), EntryMeta());
    auto w2 = (*st)->beginWrite(key("http://a.example/alone"), EntryMeta());
    if (!w1.ok() || !w2.ok()) _exit(3);
    if (!(*w1)->append(std::string(350, 'h')).isOk()) _exit(4);
    if (!(*w2)->append(std::string(350, 'a')).isOk()) _exit(5);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  auto before = segments();
  ASSERT_EQ(before.size(), 2u);
  EXPECT_EQ(readAt(before[0], kAlign, 300), std::string(300, 'h')) << "the half body was written";

  auto st = open(opts());  // background off: the index (and the reclaim) loads in open()
  EXPECT_EQ(get(*st, key("http://a.example/kept")), std::string(1000, 'k'));
  EXPECT_EQ(get(*st, key("http://a.example/half")), "<miss>");
  EXPECT_EQ(segments(), std::vector<std::string>{before[0]})
      << "the segment of nothing live is gone";
  EXPECT_EQ(readAt(before[0], kAlign, 300), std::string(300, '\0'));
  EXPECT_EQ(readAt(before[0], 0, 1000), std::string(1000, 'k'));
  // Segments found at open are not written again; new bodies go elsewhere.
  ASSERT_TRUE(put(*st, key("http://a.example/new"), std::string(1000, 'n')).isOk());
  EXPECT_EQ(segments().size(), 2u);
  EXPECT_EQ(get(*st, key("http://a.example/new")), std::string(1000, 'n'));
}

// With the default threshold, a body under one block written in one piece
// stays in RocksDB; one of a block or more goes to a file.
TEST_F(BodyFilesTest, SmallBodiesStayInRocksDb) {
  RocksStoreOptions o = opts();
  o.chunk_bytes = 64 * 1024;
  o.min_file_body_bytes = RocksStoreOptions().min_file_body_bytes;
  ASSERT_EQ(o.min_file_body_bytes, kAlign);
  auto st = open(o);
  ASSERT_TRUE(put(*st, key("http://a.example/small"), std::string(kAlign - 1, 's')).isOk());
  EXPECT_TRUE(segments().empty());
  ASSERT_TRUE(put(*st, key("http://a.example/block"), std::string(kAlign, 'b')).isOk());
  EXPECT_EQ(segments().size(), 1u);
  EXPECT_EQ(get(*st, key("http://a.example/small")), std::string(kAlign - 1, 's'));
  EXPECT_EQ(get(*st, key("http://a.example/block")), std::string(kAlign, 'b'));
}

// An empty body (a 204, a Vary record) takes no place in a segment: its
// record names none, so no other body can share its offset.
TEST_F(BodyFilesTest, AnEmptyBodyTakesNoPlaceInASegment) {
  {
    auto st = open(opts());
    ASSERT_TRUE(put(*st, key("http://a.example/empty"), "").isOk());
    EXPECT_TRUE(segments().empty());
    ASSERT_TRUE(put(*st, key("http://a.example/full"), std::string(250, 'f')).isOk());
  }
  auto st = open(opts());
  EXPECT_EQ(get(*st, key("http://a.example/empty")), "");
  ASSERT_TRUE(st->removeUrl(*CacheKey::fromUrl("http://a.example/empty")).isOk());
  EXPECT_EQ(get(*st, key("http://a.example/full")), std::string(250, 'f'));
  EXPECT_EQ(st->stats().corrupt_objects, 0u);
}

// A body abandoned halfway (a failed fetch, an object over the limit) is
// punched out, and the next body starts past it: no offset is written twice.
TEST_F(BodyFilesTest, AnAbandonedBodyIsPunchedOutAndNotWrittenOver) {
  auto st = open(opts());
  {
    auto w = st->beginWrite(key("http://a.example/gone"), EntryMeta());
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->append(std::string(350, 'g')).isOk());  // 3 chunks written
    ASSERT_EQ(readAt(segments().at(0), 0, 300), std::string(300, 'g'));
  }  // destroyed without commit
  EXPECT_EQ(readAt(segments().at(0), 0, 300), std::string(300, '\0'));
  ASSERT_TRUE(put(*st, key("http://a.example/next"), std::string(250, 'n')).isOk());
  ASSERT_EQ(segments().size(), 1u);
  EXPECT_EQ(readAt(segments().at(0), kAlign, 250), std::string(250, 'n'));
  EXPECT_EQ(readAt(segments().at(0), 0, 250), std::string(250, '\0'));
  EXPECT_EQ(get(*st, key("http://a.example/next")), std::string(250, 'n'));
  EXPECT_EQ(get(*st, key("http://a.example/gone")), "<miss>");
}

// A reader that looked an object up before it was removed reads zeros (or
// a file already gone): that is "removed while reading", not damage.
TEST_F(BodyFilesTest, AReaderRacingARemovalIsToldNotDamaged) {
  RocksStoreOptions o = opts();
  o.body_segment_bytes = kAlign;  // one body per segment: its file goes too
  auto st = open(o);
  for (const char* url : {"http://a.example/one", "http://a.example/many"}) {
    const size_t size = std::string_view(url).ends_with("one") ? 80 : 250;
    ASSERT_TRUE(put(*st, key(url), std::string(size, 'r')).isOk());
    auto r = st->lookup(key(url));
    ASSERT_TRUE(r.ok());
    ASSERT_TRUE(st->removeUrl(*CacheKey::fromUrl(url)).isOk());
    auto c = r->body->next();
    ASSERT_FALSE(c.ok()) << url;
    EXPECT_EQ(c.status().code(), StatusCode::kUnavailable) << c.status().toString();
  }
  EXPECT_TRUE(segments().empty());
  EXPECT_EQ(st->stats().corrupt_objects, 0u);
}

// Body files that cannot be opened fail the open; the store is not moved
// aside as if it were broken.
TEST_F(BodyFilesTest, BodyFilesThatCannotBeOpenedFailTheOpenAndMoveNothingAside) {
  {
    auto st = open(opts());
    ASSERT_TRUE(put(*st, key("http://a.example/kept"), std::string(250, 'k')).isOk());
  }
  fs::remove_all(bodiesDir());
  { std::ofstream(bodiesDir()) << "not a folder"; }
  auto st = RocksStore::open(opts());
  EXPECT_FALSE(st.ok());
  EXPECT_TRUE(fs::exists(opts().path + "/CURRENT")) << "the database stays where it is";
  int aside = 0;
  for (const auto& e : fs::directory_iterator(dir_.path()))
    aside += e.path().filename().string().find(".broken-") != std::string::npos;
  EXPECT_EQ(aside, 0);
}

TEST_F(BodyFilesTest, ObjectsOfEitherLayoutStayReadable) {
  RocksStoreOptions chunks = opts();
  chunks.body_files = false;
  {
    auto st = open(chunks);
    ASSERT_TRUE(put(*st, key("http://a.example/chunks"), std::string(250, 'c')).isOk());
  }
  EXPECT_TRUE(segments().empty());
  {
    auto st = open(opts());
    EXPECT_EQ(get(*st, key("http://a.example/chunks")), std::string(250, 'c'));
    ASSERT_TRUE(put(*st, key("http://a.example/file"), std::string(250, 'f')).isOk());
    // A metadata update keeps where the body is.
    EntryMeta m;
    m.status = 203;
    ASSERT_TRUE(st->updateMeta(key("http://a.example/file"), m).isOk());
    EXPECT_EQ(get(*st, key("http://a.example/file")), std::string(250, 'f'));
  }
  EXPECT_EQ(segments().size(), 1u);
  auto st = open(chunks);
  EXPECT_EQ(get(*st, key("http://a.example/chunks")), std::string(250, 'c'));
  EXPECT_EQ(get(*st, key("http://a.example/file")), std::string(250, 'f'));
  auto r = st->lookup(key("http://a.example/file"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->meta->status, 203);
}

// Inside a NonBlockingReads scope a body in the page cache is served and
// nothing is refused; one that is not is refused, not waited for (where
// the kernel drops the pages when asked; otherwise that half is skipped).
TEST_F(BodyFilesTest, ReadsInsideAScopeAreServedFromThePageCacheOrRefused) {
  auto st = open(opts());
  ASSERT_TRUE(st->honoursNonBlockingReads());
  const std::string body(300, 'r');
  ASSERT_TRUE(put(*st, key("http://a.example/r"), body).isOk());
  ASSERT_EQ(get(*st, key("http://a.example/r")), body);  // resident now
  {
    NonBlockingReads scope;
    auto r = st->lookup(key("http://a.example/r"));
    ASSERT_TRUE(r.ok());
    std::string got;
    for (auto c = r->body->next(); c.ok() && !c->empty(); c = r->body->next()) got.append(*c);
    EXPECT_FALSE(scope.refused());
    EXPECT_EQ(got, body);
  }
  const std::string seg = segments().at(0);
  int fd = ::open(seg.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ::fdatasync(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
  {
    NonBlockingReads scope;
    auto r = st->lookup(key("http://a.example/r"));
    ASSERT_TRUE(r.ok());
    auto c = r->body->next();
    if (c.ok()) {
      EXPECT_FALSE(scope.refused());
      GTEST_SKIP() << "the page cache kept the file; nothing to refuse here";
    }
    EXPECT_TRUE(scope.refused());
    EXPECT_EQ(c.status().code(), StatusCode::kUnavailable) << c.status().toString();
  }
  EXPECT_EQ(st->stats().corrupt_objects, 0u) << "a refusal is not damage";
  EXPECT_EQ(get(*st, key("http://a.example/r")), body);
}

}  // namespace
}  // namespace tern::storage
