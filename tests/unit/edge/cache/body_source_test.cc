// storedSource and readAhead over a real RocksStore: a disk-tier body is read
// on the blocking pool only when the next chunk needs I/O, and a body whose
// first chunk was read ahead is served without another trip to the pool.

#include "edge/cache/body_source.h"

#include <gtest/gtest.h>

#include <deque>
#include <filesystem>
#include <fstream>
#include <string>

#include "storage/format/codec.h"
#include "storage/format/format.h"
#include "storage/rocksdb/rocks_store.h"
#include "tests/support/temp_dir.h"
#include "tests/unit/storage/rocksdb/store_access.h"

namespace tern::edge::cache {
namespace {

using storage::store_access::key;
using storage::store_access::put;

// Tasks handed to the "pool" and the "loop" are queued and run by the test,
// so that it sees every hand-off.
struct Queues {
  std::deque<Task> loop, pool;
  int pool_tasks = 0;
  Executor loopExecutor() {
    return [this](Task t) { loop.push_back(std::move(t)); };
  }
  Executor poolExecutor() {
    return [this](Task t) {
      ++pool_tasks;
      pool.push_back(std::move(t));
    };
  }
  void drain() {
    while (!loop.empty() || !pool.empty()) {
      std::deque<Task>& q = pool.empty() ? loop : pool;
      Task t = std::move(q.front());
      q.pop_front();
      t();
    }
  }
};

// Reads the whole source; "<error: ...>" when it fails.
std::string readAll(BodySource& src, Queues& q) {
  std::string out;
  for (;;) {
    bool called = false, end = false;
    std::string error;
    src.next([&](Result<std::string_view> r) {
      called = true;
      if (!r.ok()) {
        error = r.status().toString();
      } else if (r->empty()) {
        end = true;
      } else {
        out.append(*r);
      }
    });
    q.drain();
    if (!called) return "<never completed>";
    if (!error.empty()) return "<error: " + error + ">";
    if (end) return out;
  }
}

class BodySourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    storage::RocksStoreOptions o;
    o.path = dir_.sub("store");
    o.chunk_bytes = 100;
    o.background = false;
    // (Bodies to be read; a body sent from its file is the last test's.)
    o.send_body_files = send_files_;
    auto s = storage::RocksStore::open(o);
    ASSERT_TRUE(s.ok()) << s.status().toString();
    store_ = std::move(*s);
  }
  std::unique_ptr<storage::BodyReader> reader(std::string_view url) {
    auto r = store_->lookup(key(url));
    EXPECT_TRUE(r.ok()) << r.status().toString();
    return r.ok() ? std::move(r->body) : nullptr;
  }
  tern::testing::TempDir dir_;
  std::unique_ptr<storage::RocksStore> store_;
  Queues q_;
  bool send_files_ = false;
};

TEST_F(BodySourceTest, DiskReaderSaysWhenTheNextChunkNeedsIo) {
  ASSERT_TRUE(put(*store_, key("http://a.example/two"), std::string(150, 'x')).isOk());
  auto r = reader("http://a.example/two");
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->nextIsInMemory());
  ASSERT_TRUE(r->next().ok());
  EXPECT_FALSE(r->nextIsInMemory());
  ASSERT_TRUE(r->next().ok());
  EXPECT_TRUE(r->nextIsInMemory());  // only the end is left
  auto end = r->next();
  ASSERT_TRUE(end.ok());
  EXPECT_TRUE(end->empty());
}

TEST_F(BodySourceTest, EveryDiskChunkIsReadOnThePool) {
  std::string body(250, 'b');
  ASSERT_TRUE(put(*store_, key("http://a.example/b"), body).isOk());
  auto src = storedSource(reader("http://a.example/b"), /*blocking=*/true, q_.loopExecutor(),
                          q_.poolExecutor());
  EXPECT_EQ(readAll(*src, q_), body);
  EXPECT_EQ(q_.pool_tasks, 3);  // three chunks; the end needs no I/O
}

TEST_F(BodySourceTest, ReadAheadServesAOneChunkBodyWithoutThePool) {
  ASSERT_TRUE(put(*store_, key("http://a.example/one"), "one chunk").isOk());
  auto r = reader("http://a.example/one");
  ASSERT_TRUE(readAhead(&r).isOk());
  ASSERT_TRUE(r->nextIsInMemory());
  auto src = storedSource(std::move(r), /*blocking=*/true, q_.loopExecutor(), q_.poolExecutor());
  EXPECT_EQ(readAll(*src, q_), "one chunk");
  EXPECT_EQ(q_.pool_tasks, 0);
}

TEST_F(BodySourceTest, ReadAheadThenTheRestOnThePool) {
  std::string body;
  for (int i = 0; i < 250; ++i) body.push_back(static_cast<char>('a' + i % 26));
  ASSERT_TRUE(put(*store_, key("http://a.example/three"), body).isOk());
  auto r = reader("http://a.example/three");
  ASSERT_TRUE(readAhead(&r).isOk());
  auto src = storedSource(std::move(r), /*blocking=*/true, q_.loopExecutor(), q_.poolExecutor());
  EXPECT_EQ(readAll(*src, q_), body);
  EXPECT_EQ(q_.pool_tasks, 2);
}

TEST_F(BodySourceTest, ReadAheadOfAnEmptyBodyOrAMemoryReaderChangesNothing) {
  ASSERT_TRUE(put(*store_, key("http://a.example/empty"), "").isOk());
  auto r = reader("http://a.example/empty");
  ASSERT_TRUE(readAhead(&r).isOk());
  auto src = storedSource(std::move(r), /*blocking=*/true, q_.loopExecutor(), q_.poolExecutor());
  EXPECT_EQ(readAll(*src, q_), "");
  EXPECT_EQ(q_.pool_tasks, 0);
  std::unique_ptr<storage::BodyReader> none;
  EXPECT_TRUE(readAhead(&none).isOk());
}

// tryNext hands out what is there at once, and nothing that needs I/O: a
// read-ahead chunk yes, then the next disk chunk no (it is left for next(),
// which reads it on the pool), then the end once it is known.
TEST_F(BodySourceTest, TryNextTakesOnlyWhatNeedsNoIo) {
  std::string body(150, 't');
  ASSERT_TRUE(put(*store_, key("http://a.example/t"), body).isOk());
  auto r = reader("http://a.example/t");
  ASSERT_TRUE(readAhead(&r).isOk());
  auto src = storedSource(std::move(r), /*blocking=*/true, q_.loopExecutor(), q_.poolExecutor());
  auto first = src->tryNext();
  ASSERT_TRUE(first && first->ok());
  EXPECT_EQ(**first, body.substr(0, 100));
  EXPECT_FALSE(src->tryNext());  // the second chunk is on disk
  EXPECT_EQ(readAll(*src, q_), body.substr(100));
  EXPECT_EQ(q_.pool_tasks, 1);
  auto end = src->tryNext();
  ASSERT_TRUE(end && end->ok());
  EXPECT_TRUE((*end)->empty());

  auto text = stringSource("abc");
  auto a = text->tryNext();
  ASSERT_TRUE(a && a->ok());
  EXPECT_EQ(**a, "abc");
  auto b = text->tryNext();
  ASSERT_TRUE(b && b->ok());
  EXPECT_TRUE((*b)->empty());
}

TEST_F(BodySourceTest, ReadAheadOfACorruptFirstChunkIsAnErrorAndRemovesTheObject) {
  ASSERT_TRUE(put(*store_, key("http://a.example/c"), std::string(150, 'c')).isOk());
  // Damage the first chunk in the body file (the store's only one).
  const std::filesystem::path bodies =
      std::filesystem::path(dir_.sub("store")) / storage::format::kBodyFilesDir;
  std::string segment;
  for (const auto& e : std::filesystem::directory_iterator(bodies)) segment = e.path().string();
  ASSERT_FALSE(segment.empty());
  // (While the store is closed: a body this process wrote is not read
  // again for checking, see storage/rocksdb/body_files.h.)
  store_.reset();
  std::fstream(segment, std::ios::in | std::ios::out | std::ios::binary) << "garbage";
  ASSERT_NO_FATAL_FAILURE(SetUp());
  auto r = reader("http://a.example/c");
  Status s = readAhead(&r);
  EXPECT_TRUE(s.isCorruption()) << s.toString();
  EXPECT_TRUE(store_->lookup(key("http://a.example/c")).status().isNotFound());
}

// A disk body that can be sent from its file (checked, in the page cache)
// is not read ahead; it is handed over as a file region, or, for a
// consumer that reads chunks, its first chunk is read on the loop (it was
// in the page cache a moment ago) and the rest on the pool, as after a
// read-ahead.
TEST_F(BodySourceTest, ABodyThatCanBeSentFromItsFileIsNotReadAhead) {
  send_files_ = true;
  store_.reset();
  ASSERT_NO_FATAL_FAILURE(SetUp());
  std::string body(250, 'f');
  ASSERT_TRUE(put(*store_, key("http://a.example/f"), body).isOk());
  auto r = reader("http://a.example/f");
  storage::BodyReader* raw = r.get();
  ASSERT_TRUE(readAhead(&r).isOk());
  EXPECT_EQ(r.get(), raw) << "not wrapped: nothing was read ahead";
  auto src = storedSource(std::move(r), /*blocking=*/true, q_.loopExecutor(), q_.poolExecutor());
  storage::FileRegion region;
  ASSERT_TRUE(src->takeFile(&region));
  EXPECT_EQ(region.length, body.size());

  auto chunks = reader("http://a.example/f");
  ASSERT_TRUE(readAhead(&chunks).isOk());
  auto read = storedSource(std::move(chunks), true, q_.loopExecutor(), q_.poolExecutor());
  EXPECT_EQ(readAll(*read, q_), body);
  EXPECT_EQ(q_.pool_tasks, 2);  // 3 chunks of 100 bytes
}

}  // namespace
}  // namespace tern::edge::cache
