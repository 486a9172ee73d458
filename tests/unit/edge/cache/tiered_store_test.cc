// TieredStore: the memory tier in front of a disk tier (here a second
// MemoryStore, wrapped to observe the moment between the two tiers).

#include "edge/cache/tiered_store.h"

#include <gtest/gtest.h>

#include <functional>
#include <memory>

namespace tern::edge::cache {
namespace {

using storage::ObjectKey;

// A disk tier that runs a hook once it has applied purges, before the
// TieredStore hands them to the memory tier.
class ObservedDisk final : public storage::ObjectStore {
 public:
  explicit ObservedDisk(std::unique_ptr<storage::ObjectStore> inner) : inner_(std::move(inner)) {}
  std::function<void()> after_purges;

  Result<storage::LookupResult> lookup(const ObjectKey& key) override {
    return inner_->lookup(key);
  }
  Result<std::unique_ptr<storage::ObjectWriter>> beginWrite(const ObjectKey& key,
                                                            storage::EntryMeta meta) override {
    return inner_->beginWrite(key, std::move(meta));
  }
  Status updateMeta(const ObjectKey& key, storage::EntryMeta meta) override {
    return inner_->updateMeta(key, std::move(meta));
  }
  Status removeUrl(const storage::CacheKey& url) override { return inner_->removeUrl(url); }
  Status applyPurge(const storage::PurgeSpec& spec) override { return applyPurges({spec}); }
  Status applyPurges(const std::vector<storage::PurgeSpec>& specs) override {
    Status s = inner_->applyPurges(specs);
    if (s.isOk() && after_purges) after_purges();
    return s;
  }
  uint64_t appliedSeq() const override { return inner_->appliedSeq(); }
  storage::StoreStats stats() const override { return inner_->stats(); }
  void runMaintenanceForTesting() override { inner_->runMaintenanceForTesting(); }

 private:
  std::unique_ptr<storage::ObjectStore> inner_;
};

ObjectKey keyOf(std::string_view url) {
  auto k = storage::CacheKey::fromUrl(url);
  EXPECT_TRUE(k.ok());
  return {*k, {}};
}

std::unique_ptr<storage::MemoryStore> memoryStore() {
  storage::MemoryStoreOptions o;
  o.background = false;
  return std::make_unique<storage::MemoryStore>(o);
}

storage::EntryMeta metaTagged(std::string tag) {
  storage::EntryMeta m;
  m.status = 200;
  m.etag = "\"e\"";
  m.tags = {std::move(tag)};
  return m;
}

storage::PurgeSpec tagPurge(uint64_t seq, std::string tag) {
  return {seq, storage::PurgeMode::kHard, {{storage::SelectorKind::kTag, std::move(tag)}}};
}

TEST(TieredStore, APurgeCountsAsAppliedOnlyOnceTheMemoryTierHasItToo) {
  auto disk = std::make_unique<ObservedDisk>(memoryStore());
  ObservedDisk* observed = disk.get();
  TieredStore store(memoryStore(), std::move(disk), 1 << 20);
  const ObjectKey k = keyOf("http://example.com/a");
  ASSERT_TRUE(
      store.store(k, metaTagged("t"), {std::make_shared<const std::string>("body")}).isOk());
  ASSERT_TRUE(store.lookupMemory(k).ok());

  // Between the tiers, the memory tier still has the object: whoever reads
  // appliedSeq() then (the edge's metrics, a fill taking its store_seq) must
  // not see the purge as applied.
  bool checked = false;
  observed->after_purges = [&] {
    checked = true;
    EXPECT_TRUE(store.lookupMemory(k).ok());
    EXPECT_EQ(store.appliedSeq(), 0u);
  };
  ASSERT_TRUE(store.applyPurges({tagPurge(1, "t")}).isOk());
  EXPECT_TRUE(checked);
  EXPECT_EQ(store.appliedSeq(), 1u);
  EXPECT_FALSE(store.lookupMemory(k).ok());
  EXPECT_FALSE(store.lookupDisk(k).ok());
}

TEST(TieredStore, StartsFromTheDiskTiersAppliedSequence) {
  auto inner = memoryStore();
  ASSERT_TRUE(inner->applyPurges({tagPurge(1, "x"), tagPurge(2, "y")}).isOk());
  TieredStore store(memoryStore(), std::move(inner), 1 << 20);
  EXPECT_EQ(store.appliedSeq(), 2u);
  // The next purge reaches the (empty) memory tier as well.
  const ObjectKey k = keyOf("http://example.com/b");
  auto meta = metaTagged("t");
  meta.store_seq = 2;
  ASSERT_TRUE(store.store(k, meta, {std::make_shared<const std::string>("b")}).isOk());
  ASSERT_TRUE(store.applyPurge(tagPurge(3, "t")).isOk());
  EXPECT_EQ(store.appliedSeq(), 3u);
  EXPECT_FALSE(store.lookupMemory(k).ok());
  // applyLocal takes the next sequence number.
  ASSERT_TRUE(store.applyLocal(tagPurge(0, "z")).isOk());
  EXPECT_EQ(store.appliedSeq(), 4u);
}

TEST(TieredStore, MemoryOnlyFollowsTheMemoryTier) {
  TieredStore store(memoryStore(), nullptr, 1 << 20);
  EXPECT_FALSE(store.hasDisk());
  ASSERT_TRUE(store.applyPurges({tagPurge(1, "x"), tagPurge(2, "y")}).isOk());
  EXPECT_EQ(store.appliedSeq(), 2u);
}

}  // namespace
}  // namespace tern::edge::cache

namespace tern::edge::cache {
namespace {

std::string readAll(storage::LookupResult& r) {
  std::string out;
  while (true) {
    auto c = r.body->next();
    if (!c.ok() || c->empty()) return out;
    out.append(*c);
  }
}

// With room, a disk hit is copied into the memory tier; once the memory tier
// is full of objects used more often, a first-time disk hit is served from
// disk, whole, without a copy.
TEST(TieredStore, ADiskHitIsPromotedOnlyWhenTheMemoryTierAdmitsIt) {
  auto disk = memoryStore();
  const std::string body(1000, 'b');
  auto put = [&](storage::ObjectStore& st, const std::string& url) {
    auto w = st.beginWrite(keyOf(url), metaTagged("t"));
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->append(body).isOk());
    ASSERT_TRUE((*w)->commit().isOk());
  };
  for (int i = 0; i < 40; ++i) put(*disk, "http://h/o" + std::to_string(i));
  storage::MemoryStoreOptions mo;
  mo.background = false;
  mo.budget_bytes = 12 * 1024;  // about ten of them
  TieredStore tiers(std::make_unique<storage::MemoryStore>(mo), std::move(disk), 1 << 20);
  for (int i = 0; i < 20; ++i) {
    auto r = tiers.lookupDisk(keyOf("http://h/o" + std::to_string(i)));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(readAll(*r), body);
  }
  EXPECT_GE(tiers.promotions(), 10u) << "with room, disk hits are promoted";
  EXPECT_GT(tiers.memoryStats().bytes, 10u * 1024) << "the memory tier is full";
  // The residents are used again and again.
  for (int round = 0; round < 4; ++round)
    for (int i = 0; i < 20; ++i) (void)tiers.lookupMemory(keyOf("http://h/o" + std::to_string(i)));
  const uint64_t promoted = tiers.promotions();
  const uint64_t evictions = tiers.memoryStats().evictions;
  auto cold = tiers.lookupDisk(keyOf("http://h/o30"));
  ASSERT_TRUE(cold.ok());
  EXPECT_EQ(readAll(*cold), body) << "served whole from disk";
  EXPECT_EQ(tiers.promotions(), promoted);
  EXPECT_EQ(tiers.promotionsDeclined(), 1u);
  EXPECT_EQ(tiers.memoryStats().evictions, evictions) << "nothing pushed out for it";
  EXPECT_FALSE(tiers.lookupMemory(keyOf("http://h/o30")).ok()) << "no copy in memory";
}

}  // namespace
}  // namespace tern::edge::cache
