#include "edge/cache/tiered_store.h"

namespace tern::edge::cache {

TieredStore::TieredStore(std::unique_ptr<storage::MemoryStore> memory,
                         std::unique_ptr<storage::ObjectStore> disk,
                         uint64_t memory_max_object_bytes)
    : memory_(std::move(memory)),
      disk_(std::move(disk)),
      memory_max_object_bytes_(memory_max_object_bytes),
      applied_seq_(disk_ ? disk_->appliedSeq() : memory_->appliedSeq()) {}

Result<storage::LookupResult> TieredStore::lookupMemory(const storage::ObjectKey& key) {
  return memory_->lookup(key);
}

namespace {

Status writeWhole(storage::ObjectStore& st, const storage::ObjectKey& key,
                  const storage::EntryMeta& meta,
                  const std::vector<std::shared_ptr<const std::string>>& chunks) {
  TERN_ASSIGN_OR_RETURN(auto writer, st.beginWrite(key, meta));
  for (const auto& c : chunks) TERN_RETURN_IF_ERROR(writer->append(*c));
  return writer->commit();
}

}  // namespace

Result<storage::LookupResult> TieredStore::lookupDisk(const storage::ObjectKey& key) {
  if (!disk_) return Status::notFound();
  auto r = disk_->lookup(key);
  if (!r.ok() || r->meta->body_size > memory_max_object_bytes_) return r;
  // Copying it in would only push out something used as often.
  if (!memory_->admits(key, r->meta->body_size)) {
    declined_ += 1;
    return r;
  }
  promotions_ += 1;
  // Promote: read the body once, store it in memory, and serve from there.
  std::vector<std::shared_ptr<const std::string>> chunks;
  if (r->body) {
    while (true) {
      auto c = r->body->next();
      if (!c.ok()) return c.status();
      if (c->empty()) break;
      chunks.push_back(std::make_shared<const std::string>(*c));
    }
  }
  storage::EntryMeta meta = *r->meta;
  meta.stale = meta.stale || r->must_revalidate;
  (void)writeWhole(*memory_, key, meta, chunks);  // a refused promotion is not an error
  auto m = memory_->lookup(key);
  if (m.ok()) return m;
  // Purged in between, or over the memory budget: serve what was read.
  return disk_->lookup(key);
}

Status TieredStore::store(const storage::ObjectKey& key, const storage::EntryMeta& meta,
                          const std::vector<std::shared_ptr<const std::string>>& chunks) {
  uint64_t size = 0;
  for (const auto& c : chunks) size += c->size();
  Status s;
  if (disk_) s = writeWhole(*disk_, key, meta, chunks);
  if (size <= memory_max_object_bytes_) {
    Status m = writeWhole(*memory_, key, meta, chunks);
    if (!disk_) s = m;
  }
  return s;
}

Result<std::unique_ptr<TieredStore::Writer>> TieredStore::beginWrite(
    const storage::ObjectKey& key, const storage::EntryMeta& meta) {
  auto w = std::make_unique<Writer>();
  w->store_ = this;
  w->key_ = key;
  w->meta_ = meta;
  if (disk_) {
    TERN_ASSIGN_OR_RETURN(w->disk_, disk_->beginWrite(key, meta));
  }
  return w;
}

Status TieredStore::Writer::append(std::shared_ptr<const std::string> chunk) {
  size_ += chunk->size();
  if (disk_) TERN_RETURN_IF_ERROR(disk_->append(*chunk));
  if (size_ <= store_->memory_max_object_bytes_) {
    small_.push_back(std::move(chunk));
  } else if (!small_.empty()) {
    small_.clear();
    small_.shrink_to_fit();
  }
  if (!disk_ && size_ > store_->memory_max_object_bytes_)
    return Status::resourceExhausted("object larger than the memory tier's max_object_bytes");
  return Status::ok();
}

Status TieredStore::Writer::commit() {
  Status s;
  if (disk_) s = disk_->commit();
  if (size_ <= store_->memory_max_object_bytes_) {
    Status m = writeWhole(*store_->memory_, key_, meta_, small_);
    if (!disk_) s = m;
  }
  return s;
}

Status TieredStore::updateMeta(const storage::ObjectKey& key, const storage::EntryMeta& meta) {
  Status m = memory_->updateMeta(key, meta);
  if (!disk_) return m;
  return disk_->updateMeta(key, meta);
}

Status TieredStore::removeUrl(const storage::CacheKey& url) {
  TERN_RETURN_IF_ERROR(memory_->removeUrl(url));
  return disk_ ? disk_->removeUrl(url) : Status::ok();
}

Status TieredStore::applyPurge(const storage::PurgeSpec& spec) { return applyPurges({spec}); }

Status TieredStore::applyPurges(const std::vector<storage::PurgeSpec>& specs) {
  // Disk first: the memory tier never holds an entry the disk would serve
  // again after a restart. The purges count as applied once both tiers have
  // them; if the memory tier fails, a retry finds them already on disk (a
  // no-op there) and applies them to memory.
  if (disk_) TERN_RETURN_IF_ERROR(disk_->applyPurges(specs));
  TERN_RETURN_IF_ERROR(memory_->applyPurges(specs));
  uint64_t seq = disk_ ? disk_->appliedSeq() : memory_->appliedSeq();
  uint64_t was = applied_seq_.load(std::memory_order_relaxed);
  while (seq > was && !applied_seq_.compare_exchange_weak(was, seq, std::memory_order_acq_rel)) {
  }
  return Status::ok();
}

Status TieredStore::applyLocal(storage::PurgeSpec spec) {
  std::lock_guard lock(local_mu_);
  spec.seq = appliedSeq() + 1;
  return applyPurge(spec);
}

storage::StoreStats TieredStore::diskStats() const {
  return disk_ ? disk_->stats() : storage::StoreStats{};
}

}  // namespace tern::edge::cache
