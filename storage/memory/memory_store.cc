#include "storage/memory/memory_store.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "common/hash.h"
#include "common/thread_name.h"
#include "storage/format/codec.h"
#include "storage/format/format.h"

namespace tern::storage {

namespace fmt = format;

// A body kept in a sealed memfd and mapped read-only (see
// MemoryStoreOptions::file_body_bytes). Closed when the last object version
// or reader holding it is gone; a sendfile(2) still under way keeps its
// pages, which nobody can change (the file is sealed).
struct FileBody {
  int fd = -1;
  const char* data = nullptr;
  size_t size = 0;
  std::shared_ptr<std::atomic<size_t>> count;  // the store's live file bodies (it may go first)
  FileBody() = default;
  FileBody(const FileBody&) = delete;
  FileBody& operator=(const FileBody&) = delete;
  ~FileBody() {
    if (data != nullptr) ::munmap(const_cast<char*>(data), size);
    if (fd >= 0) ::close(fd);
    if (count) count->fetch_sub(1);
  }
};

struct MemoryStore::Object {
  EntryMeta meta;
  std::vector<std::string> chunks;          // the body, unless it is in `file`
  std::shared_ptr<const FileBody> file;     // a large body (file_body_bytes)
  uint64_t bytes = 0;                       // accounted size
  std::atomic<bool> stale{false};           // set by a soft purge
  std::atomic<uint64_t> judged_version{0};  // filter version it was last judged at
};

namespace {

// Accounted size of an object: body plus a rough metadata size.
uint64_t accountedBytes(const std::string& meta_key, const EntryMeta& meta) {
  uint64_t n = meta_key.size() + 64 + meta.etag.size() + meta.last_modified.size();
  for (const auto& h : meta.headers) n += h.name.size() + h.value.size() + 4;
  for (const auto& t : meta.tags) n += t.size() + 2;
  for (const auto& f : meta.vary_fields) n += f.size() + 2;
  return n + meta.body_size;
}

std::string_view urlPart(std::string_view meta_key) {
  auto a = meta_key.find(fmt::kSep);
  auto b = a == std::string_view::npos ? a : meta_key.find(fmt::kSep, a + 1);
  return b == std::string_view::npos ? meta_key : meta_key.substr(0, b + 1);
}

// Copies `chunks` into a sealed memfd mapped read-only, counted in `count`
// while it lives; null when the system refuses (no memfd, no descriptor
// left, no memory): the caller keeps the chunks.
std::shared_ptr<const FileBody> toFileBody(const std::vector<std::string>& chunks, size_t size,
                                           std::shared_ptr<std::atomic<size_t>> count) {
  auto body = std::make_shared<FileBody>();
  body->fd = ::memfd_create("tern-body", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (body->fd < 0) return nullptr;
  for (const auto& c : chunks) {
    size_t done = 0;
    while (done < c.size()) {
      ssize_t n = ::write(body->fd, c.data() + done, c.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return nullptr;
      done += static_cast<size_t>(n);
    }
  }
  if (::fcntl(body->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0)
    return nullptr;
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, body->fd, 0);
  if (map == MAP_FAILED) return nullptr;
  body->data = static_cast<const char*>(map);
  body->size = size;
  body->count = std::move(count);
  return body;
}

class MemoryBodyReader final : public BodyReader {
 public:
  MemoryBodyReader(std::shared_ptr<const MemoryStore::Object> object, size_t chunk_bytes)
      : object_(std::move(object)), chunk_bytes_(chunk_bytes) {}
  Result<std::string_view> next() override {
    if (const FileBody* f = object_->file.get()) {
      const size_t n = std::min(chunk_bytes_, f->size - pos_);
      std::string_view v(f->data + pos_, n);
      pos_ += n;
      return v;
    }
    if (index_ >= object_->chunks.size()) return std::string_view();
    return std::string_view(object_->chunks[index_++]);
  }
  bool nextIsInMemory() const override { return true; }
  bool fileReady() override { return object_->file != nullptr; }
  bool takeFile(FileRegion* out) override {
    const FileBody* f = object_->file.get();
    if (f == nullptr) return false;
    *out = {f->fd, pos_, f->size - pos_};
    pos_ = f->size;
    return true;
  }

 private:
  std::shared_ptr<const MemoryStore::Object> object_;
  size_t chunk_bytes_;
  size_t index_ = 0;  // chunks
  size_t pos_ = 0;    // file
};

}  // namespace

class MemoryObjectWriter final : public ObjectWriter {
 public:
  MemoryObjectWriter(MemoryStore* store, std::string meta_key, EntryMeta meta)
      : store_(store),
        meta_key_(std::move(meta_key)),
        object_(std::make_shared<MemoryStore::Object>()) {
    object_->meta = std::move(meta);
  }
  Status append(std::string_view data) override {
    if (done_) return Status::failedPrecondition("writer finished");
    size_ += data.size();
    if (size_ > store_->options_.max_object_bytes) {
      abort();
      return Status::resourceExhausted("object larger than max_object_bytes");
    }
    hasher_.update(data);
    const size_t chunk = store_->options_.chunk_bytes;
    while (!data.empty()) {
      if (object_->chunks.empty() || object_->chunks.back().size() == chunk) {
        object_->chunks.emplace_back();
        object_->chunks.back().reserve(std::min(chunk, data.size()));
      }
      auto& last = object_->chunks.back();
      size_t take = std::min(chunk - last.size(), data.size());
      last.append(data.substr(0, take));
      data.remove_prefix(take);
    }
    return Status::ok();
  }
  Status commit() override {
    if (done_) return Status::failedPrecondition("writer finished");
    done_ = true;
    object_->meta.body_size = size_;
    object_->meta.body_hash = hasher_.digest();
    object_->bytes = accountedBytes(meta_key_, object_->meta);
    const MemoryStoreOptions& o = store_->options_;
    if (o.file_body_bytes > 0 && size_ >= o.file_body_bytes) {
      // A place among the files first (over the cap: kept as chunks).
      std::atomic<size_t>& files = *store_->file_bodies_;
      if (files.fetch_add(1) < o.max_file_bodies) {
        if (auto file = toFileBody(object_->chunks, size_, store_->file_bodies_)) {
          object_->file = std::move(file);
          object_->chunks.clear();
          object_->chunks.shrink_to_fit();
        } else {
          files.fetch_sub(1);
        }
      } else {
        files.fetch_sub(1);
      }
    }
    return store_->commit(meta_key_, std::move(object_));
  }
  void abort() override {
    done_ = true;
    object_.reset();
  }

 private:
  MemoryStore* store_;
  std::string meta_key_;
  std::shared_ptr<MemoryStore::Object> object_;
  uint64_t size_ = 0;
  Hasher64 hasher_;
  bool done_ = false;
};

MemoryStore::MemoryStore(const MemoryStoreOptions& options)
    : options_(options), policy_(makeEvictionPolicy(options.eviction, options.budget_bytes)) {
  if (options_.chunk_bytes == 0) options_.chunk_bytes = fmt::kDefaultChunkBytes;
  if (options_.background)
    bg_thread_ = std::thread([this] {
      setThreadName("memory-maint");
      backgroundLoop();
    });
}

MemoryStore::~MemoryStore() {
  {
    std::lock_guard lock(bg_mu_);
    bg_stop_ = true;
  }
  bg_cv_.notify_all();
  if (bg_thread_.joinable()) bg_thread_.join();
}

MemoryStore::Shard& MemoryStore::shardFor(std::string_view meta_key) {
  return shards_[hash64(urlPart(meta_key)) % kShards];
}

PurgeVerdict MemoryStore::judge(std::string_view meta_key, const EntryMeta& meta) const {
  fmt::MetaKeyParts parts;
  if (!fmt::parseMetaKey(meta_key, &parts)) return PurgeVerdict::kGone;
  std::string url_id(parts.host);
  url_id.append(parts.path_query);
  std::shared_lock lock(filter_mu_);
  return filter_.check(parts.host, url_id, meta.tags, meta.store_seq);
}

bool MemoryStore::admits(const ObjectKey& key, uint64_t body_bytes) {
  const std::string meta_key = fmt::metaKey(key);
  std::lock_guard lock(policy_mu_);
  return policy_->admits(hash64(meta_key), body_bytes + meta_key.size() + 64);
}

Result<LookupResult> MemoryStore::lookup(const ObjectKey& key) {
  // The key is built in a buffer of this thread's (a lookup allocates no key).
  thread_local std::string meta_key;
  meta_key.clear();
  fmt::appendMetaKey(key, &meta_key);
  Shard& shard = shardFor(meta_key);
  std::shared_ptr<Object> object;
  {
    std::lock_guard lock(shard.mu);
    auto it = shard.find(meta_key);
    if (it == shard.objects.end()) return Status::notFound();
    object = it->second;
  }
  uint64_t version = filter_version_.load(std::memory_order_acquire);
  if (object->judged_version.load(std::memory_order_acquire) != version) {
    PurgeVerdict v = judge(meta_key, object->meta);
    if (v == PurgeVerdict::kGone) return Status::notFound("purged");
    if (v == PurgeVerdict::kStale) object->stale.store(true);
    object->judged_version.store(version, std::memory_order_release);
  }
  {
    std::unique_lock lock(policy_mu_, std::try_to_lock);
    if (lock.owns_lock()) policy_->touch(hash64(meta_key));
  }
  LookupResult out;
  out.meta = std::shared_ptr<const EntryMeta>(object, &object->meta);  // no copy
  out.must_revalidate = object->meta.stale || object->stale.load();
  if (object->meta.kind == EntryKind::kResponse)
    out.body = std::make_unique<MemoryBodyReader>(object, options_.chunk_bytes);
  return out;
}

Result<std::unique_ptr<ObjectWriter>> MemoryStore::beginWrite(const ObjectKey& key,
                                                              EntryMeta meta) {
  for (const auto& tag : meta.tags) {
    if (!isValidTag(tag)) return Status::invalidArgument("invalid surrogate key");
  }
  if (key.url.host.empty()) return Status::invalidArgument("empty host");
  return std::unique_ptr<ObjectWriter>(
      std::make_unique<MemoryObjectWriter>(this, fmt::metaKey(key), std::move(meta)));
}

void MemoryStore::eraseLocked(Shard& shard, Shard::Map::iterator it) {
  bytes_ -= static_cast<int64_t>(it->second->bytes);
  objects_ -= 1;
  uint64_t h = hash64(it->first);
  shard.erase(it);
  std::lock_guard lock(policy_mu_);
  policy_->remove(h);
  policy_keys_.erase(h);
}

Status MemoryStore::commit(const std::string& meta_key, std::shared_ptr<Object> object) {
  Shard& shard = shardFor(meta_key);
  {
    std::lock_guard lock(shard.mu);
    uint64_t version = filter_version_.load(std::memory_order_acquire);
    PurgeVerdict v = judge(meta_key, object->meta);
    if (v == PurgeVerdict::kGone) return Status::failedPrecondition("purged while being fetched");
    {
      std::shared_lock flock(filter_mu_);
      if (object->meta.store_seq < filter_.floor()) v = PurgeVerdict::kStale;
    }
    if (v == PurgeVerdict::kStale) object->meta.stale = true;
    object->judged_version = version;

    auto existing = shard.find(meta_key);
    if (existing != shard.objects.end()) eraseLocked(shard, existing);
    if (object->meta.kind == EntryKind::kResponse && options_.max_variants_per_url > 0 &&
        !meta_key.ends_with(std::string_view("\0", 1))) {
      std::string_view prefix = urlPart(meta_key);
      auto oldest = shard.objects.end();
      size_t variants = 0;
      for (auto it = shard.objects.lower_bound(prefix);
           it != shard.objects.end() && std::string_view(it->first).starts_with(prefix); ++it) {
        if (it->second->meta.kind != EntryKind::kResponse) continue;
        ++variants;
        if (oldest == shard.objects.end() ||
            it->second->meta.response_time_ms < oldest->second->meta.response_time_ms) {
          oldest = it;
        }
      }
      if (variants >= options_.max_variants_per_url) eraseLocked(shard, oldest);
    }
    bytes_ += static_cast<int64_t>(object->bytes);
    objects_ += 1;
    uint64_t h = hash64(meta_key);
    uint64_t bytes = object->bytes;
    shard.insert(meta_key, std::move(object));
    std::lock_guard plock(policy_mu_);
    policy_->insert(h, bytes);
    policy_keys_[h] = meta_key;
  }
  evictToBudget();
  return Status::ok();
}

void MemoryStore::evictToBudget() {
  while (bytes_.load() > static_cast<int64_t>(options_.budget_bytes)) {
    std::string key;
    {
      std::lock_guard lock(policy_mu_);
      auto victim = policy_->evict();
      if (!victim) return;
      auto it = policy_keys_.find(*victim);
      if (it == policy_keys_.end()) continue;
      key = std::move(it->second);
      policy_keys_.erase(it);
    }
    Shard& shard = shardFor(key);
    std::lock_guard lock(shard.mu);
    auto it = shard.find(key);
    if (it == shard.objects.end()) continue;
    bytes_ -= static_cast<int64_t>(it->second->bytes);
    objects_ -= 1;
    shard.erase(it);
    evictions_ += 1;
  }
}

Status MemoryStore::updateMeta(const ObjectKey& key, EntryMeta meta) {
  std::string meta_key = fmt::metaKey(key);
  Shard& shard = shardFor(meta_key);
  std::lock_guard lock(shard.mu);
  auto it = shard.find(meta_key);
  if (it == shard.objects.end()) return Status::notFound();
  const Object& old = *it->second;
  auto updated = std::make_shared<Object>();
  meta.body_size = old.meta.body_size;
  meta.body_hash = old.meta.body_hash;
  meta.kind = old.meta.kind;
  // As commit() does: the filter version is taken before judging, so that a
  // purge applied meanwhile makes the next lookup judge again (taken after,
  // a soft purge landing during a 304 revalidation would go unseen and the
  // revalidated object be served fresh); and a revalidation that started
  // below the filter's floor (markers settled meanwhile) stays stale.
  const uint64_t version = filter_version_.load(std::memory_order_acquire);
  PurgeVerdict verdict = judge(meta_key, meta);
  {
    std::shared_lock flock(filter_mu_);
    if (meta.store_seq < filter_.floor()) verdict = PurgeVerdict::kStale;
  }
  if (verdict != PurgeVerdict::kValid) meta.stale = true;
  updated->meta = std::move(meta);
  updated->chunks = old.chunks;
  updated->file = old.file;  // (the same sealed file: nothing copied)
  updated->bytes = accountedBytes(meta_key, updated->meta);
  updated->judged_version = version;
  bytes_ += static_cast<int64_t>(updated->bytes) - static_cast<int64_t>(old.bytes);
  it->second = std::move(updated);
  return Status::ok();
}

Status MemoryStore::removeUrl(const CacheKey& url) {
  std::string prefix = fmt::urlPrefix(url);
  Shard& shard = shardFor(prefix);
  std::lock_guard lock(shard.mu);
  auto it = shard.objects.lower_bound(prefix);
  while (it != shard.objects.end() && it->first.starts_with(prefix)) {
    auto next = std::next(it);
    eraseLocked(shard, it);
    it = next;
  }
  return Status::ok();
}

Status MemoryStore::applyPurge(const PurgeSpec& spec) {
  if (spec.seq == 0) return Status::invalidArgument("purge sequence must be > 0");
  for (const auto& sel : spec.selectors) {
    if (sel.kind == SelectorKind::kTag && !isValidTag(sel.value)) {
      return Status::invalidArgument("invalid tag selector");
    }
  }
  {
    std::unique_lock lock(filter_mu_);
    if (spec.seq <= applied_seq_.load()) return Status::ok();
    filter_.add(spec);
    applied_seq_.store(spec.seq, std::memory_order_release);
    filter_version_.fetch_add(1, std::memory_order_acq_rel);
  }
  {
    std::lock_guard lock(bg_mu_);
    bg_wakeup_ = true;
  }
  bg_cv_.notify_all();
  return Status::ok();
}

StoreStats MemoryStore::stats() const {
  StoreStats st;
  st.objects = static_cast<uint64_t>(std::max<int64_t>(objects_.load(), 0));
  st.bytes = static_cast<uint64_t>(std::max<int64_t>(bytes_.load(), 0));
  st.budget_bytes = options_.budget_bytes;
  st.evictions = evictions_.load();
  st.applied_seq = appliedSeq();
  std::shared_lock lock(filter_mu_);
  st.purge_markers = filter_.size();
  return st;
}

void MemoryStore::sweep() {
  std::lock_guard pass(sweep_mu_);
  std::vector<PurgeMarker> markers;
  {
    std::shared_lock lock(filter_mu_);
    markers = filter_.markers();
  }
  if (markers.empty()) return;
  // One walk over every shard judges each object against all markers; a
  // commit judges under its shard lock, so none slips past unjudged.
  for (auto& shard : shards_) {
    std::lock_guard lock(shard.mu);
    for (auto it = shard.objects.begin(); it != shard.objects.end();) {
      auto next = std::next(it);
      PurgeVerdict v = judge(it->first, it->second->meta);
      if (v == PurgeVerdict::kGone) {
        eraseLocked(shard, it);
      } else if (v == PurgeVerdict::kStale) {
        it->second->stale.store(true);
      }
      it = next;
    }
  }
  std::unique_lock lock(filter_mu_);
  for (const auto& m : markers) filter_.retire(m);
}

void MemoryStore::runMaintenanceForTesting() { sweep(); }

void MemoryStore::backgroundLoop() {
  while (true) {
    std::unique_lock lock(bg_mu_);
    bg_cv_.wait_for(lock, std::chrono::seconds(1), [&] { return bg_stop_ || bg_wakeup_; });
    if (bg_stop_) return;
    bg_wakeup_ = false;
    lock.unlock();
    sweep();
  }
}

}  // namespace tern::storage
