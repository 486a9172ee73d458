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
