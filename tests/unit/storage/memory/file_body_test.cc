// Large memory-tier bodies in sealed memfds: read as bytes like any body,
// handed out whole as a file region for sendfile(2), immutable while any
// reader holds them, closed once nothing does, and capped in number.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "storage/memory/memory_store.h"

namespace tern::storage {
namespace {

ObjectKey key(std::string_view url) {
  auto k = CacheKey::fromUrl(url);
  EXPECT_TRUE(k.ok());
  return {*k, ""};
}

std::string bodyOf(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + i % 23);
  return s;
}

void put(MemoryStore& store, std::string_view url, const std::string& body) {
  auto w = store.beginWrite(key(url), EntryMeta{});
  ASSERT_TRUE(w.ok());
  for (size_t at = 0; at < body.size(); at += 1000)
    ASSERT_TRUE((*w)->append(std::string_view(body).substr(at, 1000)).isOk());
  ASSERT_TRUE((*w)->commit().isOk());
}

std::string readAll(BodyReader& r) {
  std::string out;
  for (;;) {
    auto c = r.next();
    EXPECT_TRUE(c.ok());
    if (!c.ok() || c->empty()) return out;
    out.append(*c);
  }
}

MemoryStoreOptions options() {
  MemoryStoreOptions o;
  o.background = false;
  o.chunk_bytes = 4096;
  o.file_body_bytes = 10000;
  o.max_file_bodies = 2;
  return o;
}

TEST(FileBodyTest, ALargeBodyIsASealedFileReadAsBytesOrTakenWhole) {
  MemoryStore store(options());
  const std::string big = bodyOf(50000), small = bodyOf(9999);
  put(store, "http://a.example/big", big);
  put(store, "http://a.example/small", small);

  auto hit = store.lookup(key("http://a.example/big"));
  ASSERT_TRUE(hit.ok());
  EXPECT_EQ(readAll(*hit->body), big);

  hit = store.lookup(key("http://a.example/big"));
  ASSERT_TRUE(hit.ok());
  auto first = hit->body->next();  // a chunk as bytes, then the rest as a file
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->size(), 4096u);
  FileRegion region;
  ASSERT_TRUE(hit->body->takeFile(&region));
  EXPECT_EQ(region.offset, 4096u);
  EXPECT_EQ(region.length, big.size() - 4096);
  std::string from_file(region.length, '\0');
  ASSERT_EQ(::pread(region.fd, from_file.data(), region.length, static_cast<off_t>(region.offset)),
            static_cast<ssize_t>(region.length));
  EXPECT_EQ(from_file, big.substr(4096));
  auto end = hit->body->next();  // the reader is at the end now
  ASSERT_TRUE(end.ok());
  EXPECT_TRUE(end->empty());
  // Nobody can change or shrink it while it is being sent.
  const int seals = ::fcntl(region.fd, F_GET_SEALS);
  EXPECT_EQ(seals & (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL),
            F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
  EXPECT_LT(::pwrite(region.fd, "x", 1, 0), 0);

  // A body under the threshold stays in chunks.
  auto s = store.lookup(key("http://a.example/small"));
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE(s->body->takeFile(&region));
  EXPECT_EQ(readAll(*s->body), small);
}

TEST(FileBodyTest, TheFileLivesWhileAReaderDoesAndNoLonger) {
  MemoryStore store(options());
  put(store, "http://a.example/big", bodyOf(20000));
  auto hit = store.lookup(key("http://a.example/big"));
  ASSERT_TRUE(hit.ok());
  FileRegion region;
  ASSERT_TRUE(hit->body->takeFile(&region));
  ASSERT_TRUE(store.removeUrl(key("http://a.example/big").url).isOk());
  EXPECT_TRUE(store.lookup(key("http://a.example/big")).status().isNotFound());
  // Removed from the store, still readable by the reader that has it.
  char c = 0;
  EXPECT_EQ(::pread(region.fd, &c, 1, 0), 1);
  EXPECT_EQ(c, 'a');
  { LookupResult last = std::move(*hit); }  // the reader and the entry it came with
  // Closed with its last holder (the number may be open again, but not as
  // this file).
  char target[256] = {};
  const std::string link = "/proc/self/fd/" + std::to_string(region.fd);
  const ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
  EXPECT_TRUE(n < 0 || std::string(target, static_cast<size_t>(n)).find("memfd:tern-body") ==
                           std::string::npos)
      << target;
}

TEST(FileBodyTest, BeyondTheCapBodiesStayInChunks) {
  MemoryStore store(options());  // two files at most
  for (int i = 0; i < 3; ++i) put(store, "http://a.example/" + std::to_string(i), bodyOf(20000));
  int files = 0;
  for (int i = 0; i < 3; ++i) {
    auto hit = store.lookup(key("http://a.example/" + std::to_string(i)));
    ASSERT_TRUE(hit.ok());
    FileRegion region;
    if (hit->body->takeFile(&region)) ++files;
  }
  EXPECT_EQ(files, 2);
  // One goes: the next large body gets its place.
  ASSERT_TRUE(store.removeUrl(key("http://a.example/0").url).isOk());
  put(store, "http://a.example/3", bodyOf(20000));
  auto hit = store.lookup(key("http://a.example/3"));
  ASSERT_TRUE(hit.ok());
  FileRegion region;
  EXPECT_TRUE(hit->body->takeFile(&region));
}

}  // namespace
}  // namespace tern::storage
