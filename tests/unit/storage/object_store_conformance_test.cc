// The conformance suite every ObjectStore implementation must pass.

#include <gtest/gtest.h>

#include <cstdio>
#include <functional>
#include <memory>
#include <thread>

#include "storage/memory/memory_store.h"
#include "storage/object_store.h"
#include "storage/rocksdb/rocks_store.h"
#include "tests/support/temp_dir.h"

namespace tern::storage {
namespace {

struct Limits {
  uint64_t budget = 64ULL << 20;
  uint64_t max_object = 4ULL << 20;
  uint32_t chunk = 1024;
  size_t max_variants = 4;
};

using Factory = std::function<std::unique_ptr<ObjectStore>(const std::string& dir, Limits)>;

struct Impl {
  std::string name;
  Factory make;
};
void PrintTo(const Impl& impl, std::ostream* os) { *os << impl.name; }

// `file_body_bytes`: bodies of at least that size in sealed memfds (0: none).
Impl memoryImpl(std::string name = "memory", uint64_t file_body_bytes = 0) {
  return {std::move(name),
          [file_body_bytes](const std::string&, Limits l) -> std::unique_ptr<ObjectStore> {
            MemoryStoreOptions o;
            o.budget_bytes = l.budget;
            o.max_object_bytes = l.max_object;
            o.chunk_bytes = l.chunk;
            o.max_variants_per_url = l.max_variants;
            o.background = false;
            o.file_body_bytes = file_body_bytes;
            return std::make_unique<MemoryStore>(o);
          }};
}

// `meta_cache_bytes`: memory for decoded metadata (0: every lookup reads it).
// `body_files`: bodies in body files (false: as chunks in RocksDB).
Impl rocksImpl(std::string name = "rocksdb", uint64_t meta_cache_bytes = 64 << 20,
               bool body_files = true) {
  return {std::move(name),
          [meta_cache_bytes, body_files](const std::string& dir,
                                         Limits l) -> std::unique_ptr<ObjectStore> {
            RocksStoreOptions o;
            o.meta_cache_bytes = meta_cache_bytes;
            o.body_files = body_files;
            o.min_file_body_bytes = 0;  // the suite's small bodies go to files too
            o.path = dir + "/store";
            o.budget_bytes = l.budget;
            o.max_object_bytes = l.max_object;
            o.chunk_bytes = l.chunk;
            o.max_variants_per_url = l.max_variants;
            o.background = false;
            auto s = RocksStore::open(o);
            EXPECT_TRUE(s.ok()) << s.status().toString();
            return s.ok() ? std::move(*s) : nullptr;
          }};
}

ObjectKey key(std::string_view url, std::string variant = {}) {
  auto k = CacheKey::fromUrl(url);
  EXPECT_TRUE(k.ok());
  return {*k, std::move(variant)};
}

std::string bodyOf(size_t n, char seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + static_cast<char>(i * 7));
  return s;
}

class ObjectStoreConformance : public ::testing::TestWithParam<Impl> {
 protected:
  void SetUp() override { store_ = GetParam().make(dir_.path(), limits_); }
  void reset(Limits l) {
    store_.reset();
    limits_ = l;
    store_ = GetParam().make(dir_.path() + "/" + std::to_string(++generation_), l);
  }

  Status put(const ObjectKey& k, std::string_view body, uint64_t store_seq = 0,
             std::vector<std::string> tags = {}, EntryKind kind = EntryKind::kResponse) {
    EntryMeta m;
    m.kind = kind;
    m.status = 200;
    m.headers = {{"content-type", "text/plain"}};
    m.etag = "\"e\"";
    m.tags = std::move(tags);
    m.store_seq = store_seq;
    m.response_time_ms = ++clock_;
    auto w = store_->beginWrite(k, m);
    if (!w.ok()) return w.status();
    // Feed in uneven pieces to exercise chunking.
    for (size_t off = 0; off < body.size(); off += 777) {
      TERN_RETURN_IF_ERROR((*w)->append(body.substr(off, 777)));
    }
    return (*w)->commit();
  }

  // Reads a whole body; "<miss>" on NotFound.
  std::string get(const ObjectKey& k, bool* must_revalidate = nullptr) {
    auto r = store_->lookup(k);
    if (!r.ok())
      return r.status().isNotFound() ? "<miss>" : "<error " + r.status().toString() + ">";
    if (must_revalidate) *must_revalidate = r->must_revalidate;
    std::string out;
    if (!r->body) return out;
    while (true) {
      auto chunk = r->body->next();
      if (!chunk.ok()) return "<error " + chunk.status().toString() + ">";
      if (chunk->empty()) break;
      out.append(*chunk);
    }
    return out;
  }

  Status purge(uint64_t seq, PurgeMode mode, SelectorKind kind, std::string_view value) {
    auto sel = normalizeSelector(kind, value);
    EXPECT_TRUE(sel.ok());
    return store_->applyPurge(PurgeSpec{seq, mode, {*sel}});
  }

  testing::TempDir dir_;
  Limits limits_;
  std::unique_ptr<ObjectStore> store_;
  int generation_ = 0;
  int64_t clock_ = 1000;
};

TEST_P(ObjectStoreConformance, StoresAndStreamsBodies) {
  for (size_t size : {0ul, 1ul, 1023ul, 1024ul, 1025ul, 100000ul}) {
    auto k = key("http://example.com/obj" + std::to_string(size));
    std::string body = bodyOf(size, 'a');
    ASSERT_TRUE(put(k, body).isOk());
    EXPECT_EQ(get(k), body) << size;
    auto r = store_->lookup(k);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->meta->body_size, size);
    EXPECT_EQ(r->meta->headers[0].name, "content-type");
  }
  EXPECT_EQ(get(key("http://example.com/none")), "<miss>");
}

TEST_P(ObjectStoreConformance, ChunksAreBoundedBySize) {
  auto k = key("http://example.com/big");
  ASSERT_TRUE(put(k, bodyOf(10 * 1024 + 5, 'z')).isOk());
  auto r = store_->lookup(k);
  ASSERT_TRUE(r.ok());
  size_t chunks = 0;
  while (true) {
    auto c = r->body->next();
    ASSERT_TRUE(c.ok());
    if (c->empty()) break;
    EXPECT_LE(c->size(), limits_.chunk);
    ++chunks;
  }
  EXPECT_EQ(chunks, 11u);
}

TEST_P(ObjectStoreConformance, ReplacesOlderVersion) {
  auto k = key("http://example.com/v");
  ASSERT_TRUE(put(k, "one").isOk());
  ASSERT_TRUE(put(k, "two-two").isOk());
  EXPECT_EQ(get(k), "two-two");
  EXPECT_EQ(store_->stats().objects, 1u);
}

TEST_P(ObjectStoreConformance, NothingVisibleBeforeCommitAndAbortLeavesNothing) {
  auto k = key("http://example.com/partial");
  EntryMeta m;
  auto w = store_->beginWrite(k, m);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->append(bodyOf(5000, 'p')).isOk());
  EXPECT_EQ(get(k), "<miss>");
  (*w)->abort();
  EXPECT_EQ(get(k), "<miss>");
  EXPECT_EQ(store_->stats().objects, 0u);
}

TEST_P(ObjectStoreConformance, RefusesObjectsOverMaxSize) {
  auto k = key("http://example.com/huge");
  Status s = put(k, bodyOf(limits_.max_object + 1, 'h'));
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(get(k), "<miss>");
}

TEST_P(ObjectStoreConformance, VariantsAreSeparateAndCapped) {
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(
        put(key("http://example.com/v", "var" + std::to_string(i)), "body" + std::to_string(i))
            .isOk());
  }
  // Cap is 4: the two oldest variants were dropped.
  EXPECT_EQ(get(key("http://example.com/v", "var0")), "<miss>");
  EXPECT_EQ(get(key("http://example.com/v", "var1")), "<miss>");
  EXPECT_EQ(get(key("http://example.com/v", "var5")), "body5");
  EXPECT_EQ(get(key("http://example.com/v", "var2")), "body2");
}

TEST_P(ObjectStoreConformance, VaryRecordHasNoBody) {
  EntryMeta m;
  m.kind = EntryKind::kVaryRecord;
  m.vary_fields = {"accept-encoding", "accept-language"};
  auto w = store_->beginWrite(key("http://example.com/r"), m);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->commit().isOk());
  auto r = store_->lookup(key("http://example.com/r"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->meta->kind, EntryKind::kVaryRecord);
  EXPECT_EQ(r->meta->vary_fields, m.vary_fields);
  EXPECT_EQ(r->body, nullptr);
}

TEST_P(ObjectStoreConformance, RemoveUrlDropsEveryVariantAndSchemeOnly) {
  ASSERT_TRUE(put(key("http://example.com/a", "x"), "1").isOk());
  ASSERT_TRUE(put(key("http://example.com/a", "y"), "2").isOk());
  ASSERT_TRUE(put(key("https://example.com/a"), "3").isOk());
  ASSERT_TRUE(put(key("http://example.com/ab"), "4").isOk());
  ASSERT_TRUE(put(key("http://example.com/a?q"), "5").isOk());
  ASSERT_TRUE(store_->removeUrl(key("http://example.com/a").url).isOk());
  EXPECT_EQ(get(key("http://example.com/a", "x")), "<miss>");
  EXPECT_EQ(get(key("http://example.com/a", "y")), "<miss>");
  EXPECT_EQ(get(key("https://example.com/a")), "<miss>");  // same resource over https
  EXPECT_EQ(get(key("http://example.com/ab")), "4");
  EXPECT_EQ(get(key("http://example.com/a?q")), "5");
}

TEST_P(ObjectStoreConformance, UpdateMetaKeepsBodyAndReplacesTags) {
  auto k = key("http://example.com/m");
  ASSERT_TRUE(put(k, "payload", 0, {"old"}).isOk());
  EntryMeta m;
  m.status = 200;
  m.headers = {{"x-new", "1"}};
  m.tags = {"new"};
  ASSERT_TRUE(store_->updateMeta(k, m).isOk());
  auto r = store_->lookup(k);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->meta->headers[0].name, "x-new");
  EXPECT_EQ(get(k), "payload");
  ASSERT_TRUE(purge(1, PurgeMode::kHard, SelectorKind::kTag, "old").isOk());
  store_->runMaintenanceForTesting();
  EXPECT_EQ(get(k), "payload");
  ASSERT_TRUE(purge(2, PurgeMode::kHard, SelectorKind::kTag, "new").isOk());
  EXPECT_EQ(get(k), "<miss>");
  EXPECT_TRUE(store_->updateMeta(key("http://example.com/gone"), m).isNotFound());
}

// A 304 revalidation that was sent before a soft purge landed must not make
// the object fresh again: updateMeta judges it against the purges applied
// after its store_seq, also once their markers have been settled.
TEST_P(ObjectStoreConformance, RevalidationStartedBeforeASoftPurgeStaysStale) {
  auto k = key("http://example.com/r");
  ASSERT_TRUE(put(k, "v1", 0, {"t"}).isOk());
  EntryMeta m;
  m.status = 200;
  m.headers = {{"etag", "\"1\""}};
  m.tags = {"t"};
  m.store_seq = 0;  // the revalidation was sent at applied seq 0
  ASSERT_TRUE(purge(1, PurgeMode::kSoft, SelectorKind::kHost, "example.com").isOk());
  ASSERT_TRUE(store_->updateMeta(k, m).isOk());
  auto r = store_->lookup(k);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->must_revalidate) << "revalidated before the purge, served as fresh";

  auto k2 = key("http://example.com/r2");
  ASSERT_TRUE(put(k2, "v1", 1, {"t"}).isOk());
  ASSERT_TRUE(purge(2, PurgeMode::kSoft, SelectorKind::kHost, "example.com").isOk());
  store_->runMaintenanceForTesting();  // the purges' markers are settled
  m.store_seq = 1;
  ASSERT_TRUE(store_->updateMeta(k2, m).isOk());
  auto r2 = store_->lookup(k2);
  ASSERT_TRUE(r2.ok());
  EXPECT_TRUE(r2->must_revalidate) << "revalidated before a settled purge, served as fresh";
  // One that started after the purge is fresh.
  m.store_seq = 2;
  ASSERT_TRUE(store_->updateMeta(k2, m).isOk());
  auto r3 = store_->lookup(k2);
  ASSERT_TRUE(r3.ok());
  EXPECT_FALSE(r3->must_revalidate);
}

// A lookup's metadata is shared with the store, not copied: it must stay
// what it was when later writes, metadata updates and purges change the
// stored object.
TEST_P(ObjectStoreConformance, LookupResultIsASnapshot) {
  auto k = key("http://example.com/snap");
  ASSERT_TRUE(put(k, "v1", 0, {"t"}).isOk());
  auto first = store_->lookup(k);
  ASSERT_TRUE(first.ok());
  const auto before = *first->meta;
  EntryMeta m;
  m.status = 200;
  m.headers = {{"x-new", "1"}};
  m.tags = {"t2"};
  ASSERT_TRUE(store_->updateMeta(k, m).isOk());
  ASSERT_TRUE(purge(1, PurgeMode::kSoft, SelectorKind::kTag, "t2").isOk());
  auto second = store_->lookup(k);
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->must_revalidate);
  EXPECT_EQ(second->meta->headers[0].name, "x-new");
  EXPECT_EQ(*first->meta, before);
  EXPECT_FALSE(first->must_revalidate);
  ASSERT_TRUE(put(k, "v2", 2, {"t3"}).isOk());
  EXPECT_EQ(*first->meta, before);
  EXPECT_EQ(get(k), "v2");
}

struct SelectorCase {
  SelectorKind kind;
  std::string value;
};

// For every selector and mode: the purge is visible to the very next read,
// hits exactly what it names, survives the background clean-up, and does not
// touch objects fetched after it.
TEST_P(ObjectStoreConformance, EverySelectorInEveryMode) {
  const std::vector<SelectorCase> cases = {
      {SelectorKind::kUrl, "http://example.com/p/a?x=1"},
      {SelectorKind::kPrefix, "example.com/p/"},
      {SelectorKind::kHost, "example.com"},
      {SelectorKind::kTag, "shared"},
      {SelectorKind::kAll, ""},
  };
  uint64_t seq = 0;
  for (const auto& c : cases) {
    for (PurgeMode mode : {PurgeMode::kHard, PurgeMode::kSoft}) {
      reset(limits_);
      seq = 0;
      SCOPED_TRACE(std::string(selectorKindName(c.kind)) + "/" + std::string(purgeModeName(mode)));
      auto a = key("http://example.com/p/a?x=1", "gzip");
      auto a2 = key("https://example.com/p/a?x=1");
      auto b = key("http://example.com/p/b");
      auto c2 = key("http://example.com/q");
      auto d = key("http://other.org/p/a?x=1");
      ASSERT_TRUE(put(a, "A", 0, {"shared"}).isOk());
      ASSERT_TRUE(put(a2, "A2", 0, {"shared"}).isOk());
      ASSERT_TRUE(put(b, "B", 0, {"shared"}).isOk());
      ASSERT_TRUE(put(c2, "C", 0, {"own"}).isOk());
      ASSERT_TRUE(put(d, "D", 0, {"shared"}).isOk());

      ASSERT_TRUE(purge(++seq, mode, c.kind, c.value).isOk());
      EXPECT_EQ(store_->appliedSeq(), seq);

      auto expectPurged = [&](const ObjectKey& k, bool purged, const std::string& body) {
        bool reval = false;
        std::string got = get(k, &reval);
        if (!purged) {
          EXPECT_EQ(got, body);
          EXPECT_FALSE(reval);
        } else if (mode == PurgeMode::kHard) {
          EXPECT_EQ(got, "<miss>");
        } else {
          EXPECT_EQ(got, body);  // kept for revalidation with its validators
          EXPECT_TRUE(reval);
        }
      };
      auto check = [&] {
        bool url = c.kind == SelectorKind::kUrl, prefix = c.kind == SelectorKind::kPrefix,
             host = c.kind == SelectorKind::kHost, tag = c.kind == SelectorKind::kTag,
             all = c.kind == SelectorKind::kAll;
        expectPurged(a, true, "A");
        expectPurged(a2, true, "A2");  // both schemes: the purge unit ignores the scheme
        expectPurged(b, prefix || host || tag || all, "B");
        expectPurged(c2, host || all, "C");
        expectPurged(d, tag || all, "D");
        (void)url;
      };
      check();
      store_->runMaintenanceForTesting();
      check();
      EXPECT_EQ(store_->stats().purge_markers, 0u);
      // Fetched after the purge was applied: served as fresh.
      ASSERT_TRUE(put(a, "A-new", seq, {"shared"}).isOk());
      bool reval = true;
      EXPECT_EQ(get(a, &reval), "A-new");
      EXPECT_FALSE(reval);
    }
  }
}

TEST_P(ObjectStoreConformance, PurgeDuringFetchIsNotStoredFresh) {
  auto k = key("http://example.com/inflight");
  // The fetch starts at applied_seq 0 ...
  EntryMeta m;
  m.store_seq = store_->appliedSeq();
  m.tags = {"t"};
  auto w = store_->beginWrite(k, m);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->append("old content").isOk());
  // ... a purge lands before the response is stored.
  ASSERT_TRUE(purge(1, PurgeMode::kHard, SelectorKind::kTag, "t").isOk());
  EXPECT_EQ((*w)->commit().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(get(k), "<miss>");

  // Same with a soft purge: stored, but only for revalidation.
  m.store_seq = store_->appliedSeq();
  auto w2 = store_->beginWrite(k, m);
  ASSERT_TRUE(w2.ok());
  ASSERT_TRUE((*w2)->append("old content").isOk());
  ASSERT_TRUE(purge(2, PurgeMode::kSoft, SelectorKind::kTag, "t").isOk());
  ASSERT_TRUE((*w2)->commit().isOk());
  bool reval = false;
  EXPECT_EQ(get(k, &reval), "old content");
  EXPECT_TRUE(reval);
}

TEST_P(ObjectStoreConformance, WriteThatOutlivesRetiredMarkersIsStoredStale) {
  auto k = key("http://example.com/slow");
  EntryMeta m;
  m.store_seq = 0;
  auto w = store_->beginWrite(k, m);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(purge(1, PurgeMode::kHard, SelectorKind::kUrl, "example.com/slow").isOk());
  store_->runMaintenanceForTesting();  // marker retired
  ASSERT_TRUE((*w)->append("x").isOk());
  Status s = (*w)->commit();
  if (s.isOk()) {
    bool reval = false;
    EXPECT_EQ(get(k, &reval), "x");
    EXPECT_TRUE(reval) << "a response fetched before a purge must not be served fresh after it";
  }
}

TEST_P(ObjectStoreConformance, AppliedSeqIsMonotonicAndIdempotent) {
  ASSERT_TRUE(put(key("http://example.com/i"), "I", 0).isOk());
  ASSERT_TRUE(purge(5, PurgeMode::kSoft, SelectorKind::kAll, "").isOk());
  EXPECT_EQ(store_->appliedSeq(), 5u);
  ASSERT_TRUE(purge(3, PurgeMode::kHard, SelectorKind::kAll, "").isOk());  // replayed, ignored
  EXPECT_EQ(store_->appliedSeq(), 5u);
  bool reval = false;
  EXPECT_EQ(get(key("http://example.com/i"), &reval), "I");
  EXPECT_TRUE(reval);
  EXPECT_FALSE(store_->applyPurge(PurgeSpec{0, PurgeMode::kHard, {}}).isOk());
}

TEST_P(ObjectStoreConformance, ManyTagsPerObjectAndManySelectorsPerPurge) {
  std::vector<std::string> tags;
  for (int i = 0; i < 1000; ++i) tags.push_back("tag" + std::to_string(i));
  auto k = key("http://example.com/tagged");
  ASSERT_TRUE(put(k, "T", 0, tags).isOk());
  PurgeSpec spec{1, PurgeMode::kHard, {}};
  for (int i = 0; i < 1000; ++i)
    spec.selectors.push_back({SelectorKind::kTag, "other" + std::to_string(i)});
  ASSERT_TRUE(store_->applyPurge(spec).isOk());
  EXPECT_EQ(get(k), "T");
  spec.seq = 2;
  spec.selectors.push_back({SelectorKind::kTag, "tag999"});
  ASSERT_TRUE(store_->applyPurge(spec).isOk());
  EXPECT_EQ(get(k), "<miss>");
  store_->runMaintenanceForTesting();
  EXPECT_EQ(store_->stats().purge_markers, 0u);
  EXPECT_EQ(store_->stats().objects, 0u);
}

TEST_P(ObjectStoreConformance, RejectsInvalidTags) {
  EntryMeta m;
  m.tags = {"has space"};
  EXPECT_FALSE(store_->beginWrite(key("http://example.com/t"), m).ok());
}

TEST_P(ObjectStoreConformance, HoldsByteBudget) {
  Limits l = limits_;
  l.budget = 1 << 20;  // 1 MiB of 4 KiB objects
  reset(l);
  std::string body = bodyOf(4096, 'b');
  for (int i = 0; i < 2000; ++i) {
    ASSERT_TRUE(put(key("http://example.com/o" + std::to_string(i)), body).isOk());
    ASSERT_LE(store_->stats().bytes, l.budget) << i;
  }
  StoreStats st = store_->stats();
  EXPECT_GE(st.bytes, l.budget * 95 / 100);  // within a few percent
  EXPECT_GT(st.evictions, 1000u);
  // Accounting matches what is really stored.
  size_t present = 0;
  for (int i = 0; i < 2000; ++i) {
    if (get(key("http://example.com/o" + std::to_string(i))) != "<miss>") ++present;
  }
  EXPECT_EQ(present, st.objects);
}

// Every outcome is counted, so that the test cannot pass with nothing stored
// or nothing read.
TEST_P(ObjectStoreConformance, ConcurrentReadersWritersAndPurges) {
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0}, unexpected_write{0}, unexpected_read{0};
  std::atomic<int> written{0}, refused_by_purge{0}, hits{0}, misses{0}, removed_while_reading{0};
  std::atomic<int> purges_ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 300; ++i) {
        auto k = key("http://example.com/c" + std::to_string(i % 50));
        std::string body = bodyOf(3000, static_cast<char>('a' + t));
        Status st = put(k, body, store_->appliedSeq(), {"c" + std::to_string(i % 5)});
        if (st.isOk()) {
          ++written;
        } else if (st.code() == StatusCode::kFailedPrecondition) {
          ++refused_by_purge;  // a hard purge matched it while it was written
        } else {
          ++unexpected_write;
          ADD_FAILURE() << st.toString();
        }
      }
    });
  }
  threads.emplace_back([&] {
    for (uint64_t s = 1; s <= 50; ++s) {
      if (purge(s, s % 2 ? PurgeMode::kHard : PurgeMode::kSoft, SelectorKind::kTag,
                "c" + std::to_string(s % 5))
              .isOk())
        ++purges_ok;
      if (s % 10 == 0) store_->runMaintenanceForTesting();
    }
  });
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&] {
      do {
        for (int i = 0; i < 50; ++i) {
          std::string got = get(key("http://example.com/c" + std::to_string(i)));
          if (got == "<miss>") {
            ++misses;
          } else if (got.starts_with("<error Unavailable")) {
            ++removed_while_reading;  // purged or replaced under the reader
          } else if (got.starts_with("<error")) {
            ++unexpected_read;
            ADD_FAILURE() << got;
          } else {
            ++hits;
            // A body is always whole and from one writer.
            if (got.size() != 3000 || got != bodyOf(3000, got[0])) ++bad;
          }
        }
      } while (!stop);
    });
  }
  for (int i = 0; i < 4; ++i) threads[static_cast<size_t>(i)].join();
  stop = true;
  for (size_t i = 4; i < threads.size(); ++i) threads[i].join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(unexpected_write.load(), 0);
  EXPECT_EQ(unexpected_read.load(), 0);
  EXPECT_EQ(written + refused_by_purge, 900);
  EXPECT_GT(written.load(), 0);
  EXPECT_EQ(purges_ok.load(), 50);
  EXPECT_EQ(store_->appliedSeq(), 50u);
  EXPECT_GE(hits + misses + removed_while_reading, 100) << "every reader read every key";
  // After the storm the store still works: each key written now is a whole
  // hit, and the last purges still apply.
  for (int i = 0; i < 50; ++i) {
    auto k = key("http://example.com/c" + std::to_string(i));
    ASSERT_TRUE(
        put(k, bodyOf(3000, 'z'), store_->appliedSeq(), {"c" + std::to_string(i % 5)}).isOk());
    EXPECT_EQ(get(k), bodyOf(3000, 'z')) << i;
  }
  ASSERT_TRUE(purge(51, PurgeMode::kHard, SelectorKind::kTag, "c1").isOk());
  int left = 0;
  for (int i = 0; i < 50; ++i)
    if (get(key("http://example.com/c" + std::to_string(i))) != "<miss>") ++left;
  EXPECT_EQ(left, 40) << "the ten keys tagged c1 are gone, the others stay";
  std::printf("%s: %d written, %d refused by a purge, %d hits, %d misses, %d removed while read\n",
              GetParam().name.c_str(), written.load(), refused_by_purge.load(), hits.load(),
              misses.load(), removed_while_reading.load());
}

INSTANTIATE_TEST_SUITE_P(Stores, ObjectStoreConformance,
                         ::testing::Values(memoryImpl(), memoryImpl("memory_files", 1), rocksImpl(),
                                           rocksImpl("rocksdb_no_meta_cache", 0),
                                           rocksImpl("rocksdb_chunks", 64 << 20, false)),
                         [](const auto& p) { return p.param.name; });

}  // namespace
}  // namespace tern::storage
