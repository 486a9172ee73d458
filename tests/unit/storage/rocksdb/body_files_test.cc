// Bodies in body files (storage/rocksdb/body_files.h) through RocksStore:
// damage and loss are misses, removed bodies give their space back, bytes
// no record holds after a crash are freed at the next open, objects of
// either layout stay readable, reads honour NonBlockingReads, and only
// checked bodies in the page cache are handed out for sendfile, never
// punched while out.

#include "storage/rocksdb/body_files.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
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
    o.sent_body_grace_ms = 0;   // punches at once (one test sets a grace)
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

// A body file write that fails partway (a full disk; here the file size
// limit, EFBIG) fails its object: nothing is stored or counted, what it
// wrote is punched out, and the store goes on. In a child, which the limit
// binds.
TEST_F(BodyFilesTest, AWriteThatFailsPartwayStoresNothingAndGivesItsSpaceBack) {
  RocksStoreOptions o = opts();
  o.chunk_bytes = 64 * 1024;
  {
    auto st = open(o);
    ASSERT_TRUE(put(*st, key("http://a.example/kept"), std::string(250, 'k')).isOk());
  }
  const auto before = segments();
  const std::string small(10000, 's'), big(2 << 20, 'b');
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::signal(SIGXFSZ, SIG_IGN);  // a write past the limit fails with EFBIG instead
    auto st = RocksStore::open(o);
    if (!st.ok()) _exit(1);
    const rlimit limit{1 << 20, 1 << 20};
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) _exit(2);
    if (!put(**st, key("http://a.example/small"), small).isOk()) _exit(3);
    if (put(**st, key("http://a.example/big"), big).isOk()) _exit(4);  // stopped at 1 MiB
    if (get(**st, key("http://a.example/small")) != small) _exit(5);
    if (get(**st, key("http://a.example/big")) != "<miss>") _exit(6);
    if ((*st)->stats().objects != 2) _exit(7);
    for (const auto& seg : segments()) {
      if (std::find(before.begin(), before.end(), seg) != before.end()) continue;
      // The small body's three blocks; the big one's megabyte punched out,
      // the chunk that failed halfway included.
      if (allocatedBlocks(seg) * 512 > 3 * kAlign) _exit(8);
    }
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0) << "the child's check that failed (see its exit codes)";
  auto st = open(o);
  EXPECT_EQ(get(*st, key("http://a.example/kept")), std::string(250, 'k'));
  EXPECT_EQ(get(*st, key("http://a.example/small")), small);
  EXPECT_EQ(get(*st, key("http://a.example/big")), "<miss>");
  ASSERT_TRUE(put(*st, key("http://a.example/big"), big).isOk());
  EXPECT_EQ(get(*st, key("http://a.example/big")), big);
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

// The bytes of a region handed out by takeFile(), read as sendfile would.
std::string regionBytes(const FileRegion& region) {
  std::string out(region.length, '?');
  const ssize_t r = ::pread(region.fd, out.data(), out.size(), static_cast<off_t>(region.offset));
  out.resize(r < 0 ? 0 : static_cast<size_t>(r));
  return out;
}

// A body this process wrote, or read whole and found good since the store
// opened, can be sent from its file; one found at open only after such a
// read; a damaged one never (its read finds the damage).
TEST_F(BodyFilesTest, OnlyCheckedBodiesAreHandedOutAsFileRegions) {
  const std::string body(250, 'f'), other(250, 'd');
  {
    auto st = open(opts());
    ASSERT_TRUE(put(*st, key("http://a.example/f"), body).isOk());
    ASSERT_TRUE(put(*st, key("http://a.example/d"), other).isOk());
    auto r = st->lookup(key("http://a.example/f"));
    ASSERT_TRUE(r.ok());
    ASSERT_TRUE(r->body->fileReady()) << "written here, and in the page cache";
    EXPECT_TRUE(r->body->nextIsInMemory());
    FileRegion region;
    ASSERT_TRUE(r->body->takeFile(&region));
    EXPECT_EQ(region.length, body.size());
    EXPECT_EQ(regionBytes(region), body);
    auto end = r->body->next();
    ASSERT_TRUE(end.ok());
    EXPECT_TRUE(end->empty()) << "the reader is at the end of the body";
  }
  overwrite(segments().at(0), kAlign + 7, "X");  // "d", while the store is closed
  auto st = open(opts());
  auto first = st->lookup(key("http://a.example/f"));
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(first->body->fileReady()) << "found at open: not checked yet";
  std::string got;
  for (auto c = first->body->next(); c.ok() && !c->empty(); c = first->body->next()) got += *c;
  EXPECT_EQ(got, body);
  auto second = st->lookup(key("http://a.example/f"));
  ASSERT_TRUE(second.ok());
  FileRegion region;
  ASSERT_TRUE(second->body->takeFile(&region)) << "read whole and found good";
  EXPECT_EQ(regionBytes(region), body);

  auto damaged = st->lookup(key("http://a.example/d"));
  ASSERT_TRUE(damaged.ok());
  EXPECT_FALSE(damaged->body->fileReady());
  EXPECT_FALSE(damaged->body->takeFile(&region));
  EXPECT_NE(get(*st, key("http://a.example/d")).find("Corruption"), std::string::npos);
  EXPECT_EQ(get(*st, key("http://a.example/d")), "<miss>");

  RocksStoreOptions off = opts();
  off.send_body_files = false;
  st.reset();
  st = open(off);
  ASSERT_TRUE(put(*st, key("http://a.example/f"), body).isOk());
  auto r = st->lookup(key("http://a.example/f"));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->body->fileReady());
  EXPECT_FALSE(r->body->takeFile(&region));
}

// A body handed out for sending is not punched by its removal until its
// last reader lets go; other bodies of its segment are punched at once,
// and one removed before its reader asked is not handed out.
TEST_F(BodyFilesTest, ABodyBeingSentIsPunchedOnlyOnceItsReaderLetsGo) {
  RocksStoreOptions o = opts();
  o.body_segment_bytes = 3 * kAlign;  // the segment outlives the removals
  auto st = open(o);
  const std::string body(3000, 's');
  for (const char* url : {"http://a.example/1", "http://a.example/2", "http://a.example/3"})
    ASSERT_TRUE(put(*st, key(url), body).isOk());
  const std::string seg = segments().at(0);
  auto sending = st->lookup(key("http://a.example/1"));
  auto also = st->lookup(key("http://a.example/1"));
  auto late = st->lookup(key("http://a.example/2"));
  ASSERT_TRUE(sending.ok() && also.ok() && late.ok());
  FileRegion region;
  ASSERT_TRUE(sending->body->takeFile(&region));
  ASSERT_TRUE(also->body->fileReady());  // two readers of one body
  ASSERT_TRUE(st->removeUrl(*CacheKey::fromUrl("http://a.example/1")).isOk());
  ASSERT_TRUE(st->removeUrl(*CacheKey::fromUrl("http://a.example/2")).isOk());
  EXPECT_EQ(get(*st, key("http://a.example/1")), "<miss>");
  EXPECT_EQ(regionBytes(region), body) << "punched under a send";
  EXPECT_EQ(readAt(seg, kAlign, kAlign), std::string(kAlign, '\0'))
      << "a body nobody sends is punched at once";
  // Removed before its reader asked: read as before (zeros), not sent.
  EXPECT_FALSE(late->body->fileReady());
  const uint64_t blocks = allocatedBlocks(seg);
  sending.value().body.reset();
  EXPECT_EQ(regionBytes(region), body) << "another reader still sends it";
  also.value().body.reset();  // the last pin: the punch is done now
  EXPECT_LT(allocatedBlocks(seg), blocks);
  EXPECT_EQ(readAt(seg, 0, kAlign), std::string(kAlign, '\0'));
  EXPECT_EQ(get(*st, key("http://a.example/3")), body);
}

// Removals and replacements racing readers that send: every region a
// reader was handed holds its body, whole, for as long as it holds it.
TEST_F(BodyFilesTest, RegionsHandedOutHoldTheirBodyWhileObjectsAreReplaced) {
  RocksStoreOptions o = opts();
  o.body_segment_bytes = 8 * kAlign;  // segments fill and go during the run
  auto st = open(o);
  auto bodyOf = [](int v) { return std::string(2000 + v % 7, static_cast<char>('a' + v % 26)); };
  ASSERT_TRUE(put(*st, key("http://a.example/x"), bodyOf(0)).isOk());
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int v = 1; v <= 400; ++v) {
      if (v % 3 == 0) {
        (void)st->removeUrl(*CacheKey::fromUrl("http://a.example/x"));
      } else {
        EXPECT_TRUE(put(*st, key("http://a.example/x"), bodyOf(v)).isOk());
      }
    }
    stop = true;
  });
  int sent = 0, bad = 0;
  while (!stop) {
    auto r = st->lookup(key("http://a.example/x"));
    if (!r.ok()) continue;
    FileRegion region;
    if (!r->body->takeFile(&region)) continue;
    const std::string bytes = regionBytes(region);
    ++sent;
    // Whichever version it was, it is one body: one letter throughout.
    if (bytes.size() < 2000 || bytes.find_first_not_of(bytes[0]) != std::string::npos ||
        bytes[0] < 'a' || bytes[0] > 'z')
      ++bad;
  }
  writer.join();
  EXPECT_EQ(bad, 0) << "of " << sent << " regions";
  EXPECT_GT(sent, 0);
  EXPECT_EQ(st->stats().corrupt_objects, 0u);
  // Every removed body's blocks were given back, those punched by their
  // last reader too: what stays allocated is the live body (at most one
  // object) and the blocks of segments still open for appends.
  uint64_t allocated = 0;
  for (const auto& seg : segments()) allocated += allocatedBlocks(seg) * 512;
  EXPECT_LE(allocated, 2 * kAlign) << "bytes of removed bodies left behind";
}

// A checked body whose pages left the page cache is not handed out (its
// send would wait for the disk on an event loop); read once, it is again.
// Asked with cachestat, and with mincore as on kernels without it.
TEST_F(BodyFilesTest, ABodyOutOfThePageCacheIsReadNotSent) {
  auto st = open(opts());
  const std::string body(300, 'p');
  ASSERT_TRUE(put(*st, key("http://a.example/p"), body).isOk());
  const std::string seg = segments().at(0);
  for (bool mincore : {false, true}) {
    SCOPED_TRACE(mincore ? "mincore" : "cachestat");
    BodySegment::useMincoreForTesting(mincore);
    {
      auto r = st->lookup(key("http://a.example/p"));
      ASSERT_TRUE(r.ok());
      ASSERT_TRUE(r->body->fileReady());
    }
    int fd = ::open(seg.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    ::fdatasync(fd);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
    auto r = st->lookup(key("http://a.example/p"));
    ASSERT_TRUE(r.ok());
    if (r->body->fileReady()) {
      BodySegment::useMincoreForTesting(false);
      GTEST_SKIP() << "the page cache kept the file";
    }
    EXPECT_FALSE(r->body->nextIsInMemory());
    EXPECT_EQ(get(*st, key("http://a.example/p")), body);
    auto again = st->lookup(key("http://a.example/p"));
    ASSERT_TRUE(again.ok());
    EXPECT_TRUE(again->body->fileReady());
  }
  BodySegment::useMincoreForTesting(false);
}

// After a restart the index load lists the bodies while hits are served. A
// body found at open, checked, being sent and removed before the listing
// finished is not punched by the clean-up of bytes no record holds: its
// last reader does that.
TEST_F(BodyFilesTest, TheCleanUpAfterOpenLeavesABodyBeingSentInPlace) {
  const std::string dir = dir_.sub("files");
  const std::string body(5000, 'x'), other(3000, 'y');
  BodyFiles::Extent sent, live;
  {
    auto files = BodyFiles::open(dir, 1 << 20);
    ASSERT_TRUE(files.ok());
    for (auto [e, b] : {std::pair{&sent, &body}, std::pair{&live, &other}}) {
      auto lease = (*files)->lease(7);
      ASSERT_TRUE(lease.ok());
      ASSERT_TRUE((*files)->write(*lease, lease->offset, *b).isOk());
      (*files)->finish(*lease, b->size(), true);
      *e = {lease->segment->id(), lease->offset, b->size()};
    }
  }
  auto files = BodyFiles::open(dir, 1 << 20);
  ASSERT_TRUE(files.ok());
  auto segment = (*files)->find(sent.segment);
  ASSERT_TRUE(segment);
  segment->markChecked(sent.offset);  // read whole and found good
  ASSERT_TRUE(segment->pin(sent.offset));
  (*files)->release(sent);          // removed while out, before the listing ended
  (*files)->reclaim({sent, live});  // (listed before it was removed)
  std::string got(body.size(), '?');
  ASSERT_TRUE(segment->read(sent.offset, got.data(), got.size()).isOk());
  EXPECT_EQ(got, body) << "punched under a send";
  segment->unpin(sent.offset, sent.length);
  ASSERT_TRUE(segment->read(sent.offset, got.data(), got.size()).isOk());
  EXPECT_EQ(got, std::string(body.size(), '\0')) << "its last reader punches it";
  std::string kept(other.size(), '?');
  ASSERT_TRUE(segment->read(live.offset, kept.data(), kept.size()).isOk());
  EXPECT_EQ(kept, other);
}

// A socket may hold a sent body's pages until the peer acknowledges them:
// a punch in a segment that had a body out waits out the grace.
TEST_F(BodyFilesTest, APunchWaitsOutTheGraceAfterABodyWasSent) {
  RocksStoreOptions o = opts();
  o.body_segment_bytes = 3 * kAlign;
  o.sent_body_grace_ms = 300;
  auto st = open(o);
  const std::string body(3000, 'g');
  for (const char* url : {"http://a.example/1", "http://a.example/2", "http://a.example/3"})
    ASSERT_TRUE(put(*st, key(url), body).isOk());
  const std::string seg = segments().at(0);
  {
    auto r = st->lookup(key("http://a.example/1"));
    ASSERT_TRUE(r.ok());
    FileRegion region;
    ASSERT_TRUE(r->body->takeFile(&region));
    ASSERT_TRUE(st->removeUrl(*CacheKey::fromUrl("http://a.example/1")).isOk());
  }  // sent: its reader is gone, its pages may still be in a socket
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(st->removeUrl(*CacheKey::fromUrl("http://a.example/2")).isOk());
  st->runMaintenanceForTesting();
  EXPECT_EQ(readAt(seg, 0, 3000), body) << "punched within the grace";
  EXPECT_EQ(readAt(seg, kAlign, 3000), body) << "punched within the grace";
  bool punched = false;
  while (!punched && std::chrono::steady_clock::now() - start < std::chrono::seconds(10)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    st->runMaintenanceForTesting();
    punched = readAt(seg, 0, 2 * kAlign) == std::string(2 * kAlign, '\0');
  }
  EXPECT_TRUE(punched) << "never punched";
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(250));
  EXPECT_EQ(get(*st, key("http://a.example/3")), body);
}

}  // namespace
}  // namespace tern::storage
