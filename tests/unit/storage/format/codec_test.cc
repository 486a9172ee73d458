#include "storage/format/codec.h"

#include <gtest/gtest.h>

#include <cstring>

#include "common/hash.h"
#include "storage/format/format.h"

namespace tern::storage::format {
namespace {

MetaRecord sample() {
  MetaRecord r;
  r.object_id = 123456789;
  r.chunk_bytes = 65536;
  r.meta.status = 203;
  r.meta.headers = {{"content-type", "text/html"}, {"etag", "\"v1\""}};
  r.meta.request_time_ms = 1700000000000;
  r.meta.response_time_ms = 1700000000042;
  r.meta.freshness_lifetime_ms = -1;
  r.meta.etag = "\"v1\"";
  r.meta.last_modified = "Tue, 15 Nov 1994 12:45:26 GMT";
  r.meta.vary_fields = {"accept-encoding"};
  r.meta.tags = {"a", "b", "c"};
  r.meta.store_seq = 99;
  r.meta.stale = true;
  r.meta.body_size = 1 << 20;
  r.meta.body_hash = 0xdeadbeefcafef00dULL;
  return r;
}

TEST(CodecTest, MetaRoundTrips) {
  MetaRecord r = sample();
  auto decoded = decodeMeta(encodeMeta(r));
  ASSERT_TRUE(decoded.ok()) << decoded.status().toString();
  EXPECT_EQ(decoded->meta, r.meta);
  EXPECT_EQ(decoded->object_id, r.object_id);
  EXPECT_EQ(decoded->chunk_bytes, r.chunk_bytes);
}

// What reuse needs of the fields (kept when stored) round-trips in a section
// of its own; a record without it (written before) reads as "not known",
// and a section a later version adds is skipped.
TEST(CodecTest, FreshnessSectionRoundTripsAndIsOptional) {
  MetaRecord r = sample();
  EXPECT_FALSE(decodeMeta(encodeMeta(r))->meta.freshness.known);
  const size_t without = encodeMeta(r).size();
  r.meta.freshness_lifetime_ms = 60000;
  r.meta.freshness = {true, 5042, true, false, true, true, false, 30, 86400};
  auto decoded = decodeMeta(encodeMeta(r));
  ASSERT_TRUE(decoded.ok()) << decoded.status().toString();
  EXPECT_EQ(decoded->meta, r.meta);
  r.meta.freshness = {true, 0, false, true, false, false, true, -1, -1};
  decoded = decodeMeta(encodeMeta(r));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->meta.freshness, r.meta.freshness);

  // Fields a later version appends to a known section: skipped.
  {
    std::string enc2 = encodeMeta(r);
    std::string body2 = enc2.substr(8);
    // The freshness section is the last thing: its length byte, then payload.
    const size_t payload = body2.size() - 4;  // 4 one-byte varints here
    ASSERT_EQ(static_cast<unsigned char>(body2[payload - 1]), 4u);
    body2[payload - 1] = 6;
    body2.append("\x01\x02", 2);
    std::string longer = enc2.substr(0, 4);
    uint32_t s2 = checksum32(body2);
    longer.append(reinterpret_cast<const char*>(&s2), 4);
    longer.append(body2);
    auto d = decodeMeta(longer);
    ASSERT_TRUE(d.ok()) << d.status().toString();
    EXPECT_EQ(d->meta, r.meta);
  }

  // A section of an unknown kind after the known ones: skipped.
  std::string enc = encodeMeta(r);
  std::string body = enc.substr(8) + std::string(
                                         "\x07\x03"
                                         "abc",
                                         5);
  EXPECT_GT(enc.size(), without);
  std::string later = enc.substr(0, 4);
  uint32_t sum = checksum32(body);
  later.append(reinterpret_cast<const char*>(&sum), 4);
  later.append(body);
  decoded = decodeMeta(later);
  ASSERT_TRUE(decoded.ok()) << decoded.status().toString();
  EXPECT_EQ(decoded->meta, r.meta);
}

// A record of version 1 (what the release before sections wrote) reads as
// it did: no freshness kept, and nothing may follow its tags.
TEST(CodecTest, RecordsOfVersionOneStayReadable) {
  MetaRecord r = sample();
  std::string v1 = encodeMeta(r);
  const uint32_t magic = kMetaMagicV1;
  std::memcpy(v1.data(), &magic, 4);  // (the checksum covers what follows)
  auto d = decodeMeta(v1);
  ASSERT_TRUE(d.ok()) << d.status().toString();
  EXPECT_EQ(d->meta, r.meta);
  EXPECT_FALSE(d->meta.freshness.known);
  r.meta.freshness = {true, 1, false, false, false, false, false, -1, -1};
  std::string with_section = encodeMeta(r);
  std::memcpy(with_section.data(), &magic, 4);
  EXPECT_TRUE(decodeMeta(with_section).status().isCorruption());
}

TEST(CodecTest, EveryFlippedByteOrTruncationIsDetected) {
  MetaRecord with_section = sample();
  with_section.meta.freshness = {true, 5042, true, false, true, true, false, 30, 86400};
  MetaRecord with_file = sample();
  with_file.file = BodyFileRef{3, 8192, {}};
  if (with_file.chunk_bytes > 0 && with_file.meta.body_size > with_file.chunk_bytes) {
    const uint64_t chunks =
        (with_file.meta.body_size + with_file.chunk_bytes - 1) / with_file.chunk_bytes;
    with_file.file->chunk_sums.assign(chunks, 0x12345678u);
  }
  for (const MetaRecord& r : {sample(), with_section, with_file}) {
    std::string enc = encodeMeta(r);
    for (size_t i = 0; i < enc.size(); ++i) {
      std::string bad = enc;
      bad[i] = static_cast<char>(bad[i] ^ 0x5a);
      EXPECT_FALSE(decodeMeta(bad).ok()) << "byte " << i;
    }
    for (size_t n = 0; n < enc.size(); ++n) EXPECT_FALSE(decodeMeta(enc.substr(0, n)).ok());
    EXPECT_FALSE(decodeMeta(enc + "x").ok());
  }
}

// Format 3: where a body in a body file lies. Chunk checksums are listed
// for a body of more than one chunk only, one per chunk.
TEST(CodecTest, ABodyFileRefRoundTripsAndMustMatchTheChunks) {
  MetaRecord r = sample();
  r.chunk_bytes = 100;
  r.meta.body_size = 250;
  r.file = BodyFileRef{7, 1ULL << 40, {1, 0xffffffffu, 3}};
  auto d = decodeMeta(encodeMeta(r));
  ASSERT_TRUE(d.ok()) << d.status().toString();
  ASSERT_TRUE(d->file.has_value());
  EXPECT_EQ(*d->file, *r.file);
  EXPECT_EQ(d->meta, r.meta);

  r.meta.body_size = 80;  // one chunk: no list
  r.file->chunk_sums.clear();
  d = decodeMeta(encodeMeta(r));
  ASSERT_TRUE(d.ok()) << d.status().toString();
  EXPECT_EQ(*d->file, *r.file);

  r.file->chunk_sums = {1};  // a list for one chunk
  EXPECT_TRUE(decodeMeta(encodeMeta(r)).status().isCorruption());
  r.meta.body_size = 250;
  r.file->chunk_sums = {1, 2};  // one short
  EXPECT_TRUE(decodeMeta(encodeMeta(r)).status().isCorruption());

  // A record without the section keeps its body as chunks.
  r.file.reset();
  d = decodeMeta(encodeMeta(r));
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->file.has_value());
}

TEST(CodecTest, ChunkChecksum) {
  std::string stored = encodeChunk("hello world");
  auto ok = decodeChunk(stored);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, "hello world");
  stored[6] ^= 1;
  EXPECT_TRUE(decodeChunk(stored).status().isCorruption());
  EXPECT_TRUE(decodeChunk("ab").status().isCorruption());
}

ObjectKey key(std::string host, std::string path, std::string variant = {}) {
  ObjectKey k;
  k.url.scheme = "https";
  k.url.host = std::move(host);
  k.url.path = std::move(path);
  k.variant = std::move(variant);
  return k;
}

TEST(CodecTest, KeyLayoutGroupsVariantsUrlsAndHosts) {
  std::string a = metaKey(key("example.com", "/static/a.js", "gzip"));
  EXPECT_TRUE(a.starts_with(urlPrefix(key("example.com", "/static/a.js").url)));
  EXPECT_TRUE(a.starts_with(prefixPrefix("example.com/static/")));
  EXPECT_TRUE(a.starts_with(hostPrefix("example.com")));
  EXPECT_FALSE(a.starts_with(hostPrefix("example.co")));  // no bleeding into other hosts
  // A URL is not a prefix-match of a longer URL's variants.
  EXPECT_FALSE(metaKey(key("example.com", "/static/a.jsx"))
                   .starts_with(urlPrefix(key("example.com", "/static/a.js").url)));
  MetaKeyParts parts;
  ASSERT_TRUE(parseMetaKey(a, &parts));
  EXPECT_EQ(parts.host, "example.com");
  EXPECT_EQ(parts.path_query, "/static/a.js");
}

TEST(CodecTest, ChunkKeysSortByObjectThenIndex) {
  EXPECT_LT(chunkKey(1, 0xffffffff), chunkKey(2, 0));
  EXPECT_LT(chunkKey(1, 9), chunkKey(1, 10));
}

TEST(CodecTest, MarkersRoundTrip) {
  PurgeMark mark{12, 34};
  auto m = decodeMarker(markerKey(SelectorKind::kPrefix, "example.com/x"), encodeMark(mark));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->kind, SelectorKind::kPrefix);
  EXPECT_EQ(m->value, "example.com/x");
  EXPECT_EQ(m->mark, mark);
  EXPECT_FALSE(decodeMarker("marker/9x", encodeMark(mark)).ok());
}

}  // namespace
}  // namespace tern::storage::format
