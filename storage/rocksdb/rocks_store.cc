#include "storage/rocksdb/rocks_store.h"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/merge_operator.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <sys/statvfs.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <optional>

#include "common/clock.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/thread_name.h"
#include "storage/format/codec.h"
#include "storage/format/format.h"
#include "storage/rocksdb/nowait_file_system.h"

namespace tern::storage {
namespace {

namespace fmt = format;
namespace fs = std::filesystem;

Status fromRocks(const rocksdb::Status& s) {
  if (s.ok()) return Status::ok();
  if (s.IsNotFound()) return Status::notFound(s.ToString());
  if (s.IsCorruption()) return Status::corruption(s.ToString());
  if (s.IsNoSpace()) return Status::resourceExhausted("disk full: " + s.ToString());
  return Status::ioError(s.ToString());
}

}  // namespace

bool isHeldElsewhere(const Status& s) {
  // RocksDB names the LOCK file of the store: "While lock file: <path>/LOCK:
  // Resource temporarily unavailable" (another process), "lock hold by
  // current process ... <path>/LOCK: No locks available" (this one). Any
  // other error that mentions a lock (a "block checksum mismatch") is not.
  return s.code() == StatusCode::kIoError && s.message().find("/LOCK:") != std::string::npos;
}

namespace {

// Signed 64-bit counters kept by merge: each operand is a delta.
class AddOperator final : public rocksdb::AssociativeMergeOperator {
 public:
  bool Merge(const rocksdb::Slice&, const rocksdb::Slice* existing, const rocksdb::Slice& value,
             std::string* new_value, rocksdb::Logger*) const override {
    uint64_t a = 0, b = 0;
    if (existing != nullptr)
      fmt::decodeFixed64(std::string_view(existing->data(), existing->size()), &a);
    fmt::decodeFixed64(std::string_view(value.data(), value.size()), &b);
    *new_value = fmt::encodeFixed64(a + b);  // two's complement: deltas may be negative
    return true;
  }
  const char* Name() const override { return "tern.add64"; }
};

std::string delta(int64_t d) { return fmt::encodeFixed64(static_cast<uint64_t>(d)); }

rocksdb::Slice slice(std::string_view s) { return {s.data(), s.size()}; }

uint64_t objectHash(std::string_view meta_key) { return hash64(meta_key); }

uint64_t chunkCount(uint64_t body_size, uint32_t chunk_bytes) {
  return chunk_bytes == 0 ? 0 : (body_size + chunk_bytes - 1) / chunk_bytes;
}

// "host/path?q" from a metadata key.
std::string urlIdOf(const fmt::MetaKeyParts& parts) {
  std::string out(parts.host);
  out.append(parts.path_query);
  return out;
}

// Prefix of metadata keys that a marker can match (empty: every key).
std::string metaRangeOf(const PurgeMarker& m) {
  switch (m.kind) {
    case SelectorKind::kHost:
      return fmt::hostPrefix(m.value);
    case SelectorKind::kPrefix:
      return fmt::prefixPrefix(m.value);
    case SelectorKind::kUrl: {
      std::string p = fmt::prefixPrefix(m.value);
      p.push_back(fmt::kSep);
      return p;
    }
    case SelectorKind::kAll:
    case SelectorKind::kTag:
      return {};
  }
  return {};
}

}  // namespace

// ---- body reader ----

class RocksBodyReader final : public BodyReader {
 public:
  RocksBodyReader(RocksStore* store, std::string meta_key, const fmt::MetaRecord& record)
      : store_(store),
        meta_key_(std::move(meta_key)),
        object_id_(record.object_id),
        chunks_(chunkCount(record.meta.body_size, record.chunk_bytes)),
        body_size_(record.meta.body_size),
        body_hash_(record.meta.body_hash) {}

  Result<std::string_view> next() override {
    if (index_ >= chunks_) return std::string_view();
    // Bodies bypass the block cache: the memory tier is their cache, and a
    // working set larger than memory would only churn it, pushing out the
    // index and metadata blocks every lookup needs. The value is pinned in
    // the block RocksDB read (or copied once from the memtable), not copied
    // again.
    rocksdb::ReadOptions ro;
    ro.fill_cache = false;
    buf_.Reset();
    rocksdb::Status s = store_->db_->Get(
        ro, store_->body_, fmt::chunkKey(object_id_, static_cast<uint32_t>(index_)), &buf_);
    if (s.IsNotFound()) {
      // Replaced or evicted while we read (ids are never reused, so no bytes
      // of another object can appear here), or lost: the store tells apart.
      store_->reportCorrupt(meta_key_, object_id_);
      return Status::unavailable("object removed while reading");
    }
    if (!s.ok()) return fromRocks(s);
    std::string_view stored(buf_.data(), buf_.size());
    ++index_;
    if (chunks_ == 1) {
      // One chunk: the body's own hash covers it; no second pass over it.
      auto data = fmt::chunkData(stored);
      if (!data.ok() || data->size() != body_size_ || hash64(*data) != body_hash_) {
        store_->reportCorrupt(meta_key_, object_id_);
        return Status::corruption("body checksum mismatch");
      }
      return *data;
    }
    auto data = fmt::decodeChunk(stored);
    if (!data.ok()) {
      store_->reportCorrupt(meta_key_, object_id_);
      return data.status();
    }
    read_ += data->size();
    if (!hasher_) hasher_.emplace();
    hasher_->update(*data);
    if (index_ == chunks_ && (read_ != body_size_ || hasher_->digest() != body_hash_)) {
      store_->reportCorrupt(meta_key_, object_id_);
      return Status::corruption("body checksum mismatch");
    }
    return *data;
  }
  bool nextIsInMemory() const override { return index_ >= chunks_; }

 private:
  RocksStore* store_;
  std::string meta_key_;
  uint64_t object_id_;
  uint64_t chunks_;
  uint64_t body_size_;
  uint64_t body_hash_;
  uint64_t index_ = 0;
  uint64_t read_ = 0;
  rocksdb::PinnableSlice buf_;
  std::optional<Hasher64> hasher_;  // for bodies of more than one chunk
};

// A body in a body file: one pread per chunk (at most chunk_bytes), into a
// buffer of the reader's own.
class FileBodyReader final : public BodyReader {
 public:
  FileBodyReader(RocksStore* store, std::string meta_key,
                 std::shared_ptr<const fmt::MetaRecord> record,
                 std::shared_ptr<BodySegment> segment)
      : store_(store),
        meta_key_(std::move(meta_key)),
        record_(std::move(record)),
        segment_(std::move(segment)),
        chunks_(chunkCount(record_->meta.body_size, record_->chunk_bytes)) {}
  ~FileBodyReader() override {
    if (pinned_) segment_->unpin(record_->file->offset, record_->meta.body_size);
  }

  // A body checked before (body_files.h) and now in the page cache: pinned
  // (no removal punches it) until this reader goes.
  bool fileReady() override {
    if (pinned_) return true;
    if (index_ != 0 || !store_->options_.send_body_files) return false;
    const uint64_t offset = record_->file->offset;
    if (!segment_->pin(offset)) return false;
    if (!segment_->resident(offset, record_->meta.body_size)) {
      segment_->unpin(offset, record_->meta.body_size);
      return false;
    }
    pinned_ = true;
    return true;
  }
  bool takeFile(FileRegion* out) override {
    if (index_ != 0 || !fileReady()) return false;
    *out = {segment_->fd(), record_->file->offset, record_->meta.body_size};
    index_ = chunks_;
    return true;
  }

  Result<std::string_view> next() override {
    if (index_ >= chunks_) return std::string_view();
    const fmt::MetaRecord& r = *record_;
    const uint64_t at = index_ * r.chunk_bytes;
    const size_t n = static_cast<size_t>(std::min<uint64_t>(r.chunk_bytes, r.meta.body_size - at));
    if (!buf_) buf_ = std::make_unique_for_overwrite<char[]>(n);  // the first chunk is the largest
    Status s = segment_->read(r.file->offset + at, buf_.get(), n);
    if (s.isCorruption()) return corrupt(s);  // the file is shorter than the body
    // Refused in a non-blocking scope (redone elsewhere), or the disk
    // failed: the object is not at fault.
    if (!s.isOk()) return s;
    std::string_view data(buf_.get(), n);
    ++index_;
    bool good;
    if (chunks_ == 1) {
      good = hash64(data) == r.meta.body_hash;  // the body's own hash covers it
    } else {
      good = checksum32(data) == r.file->chunk_sums[index_ - 1];
      if (!hasher_) hasher_.emplace();
      hasher_->update(data);
      if (good && index_ == chunks_) good = hasher_->digest() == r.meta.body_hash;
    }
    if (!good) return corrupt(Status::corruption("body checksum mismatch"));
    if (index_ == chunks_) segment_->markChecked(r.file->offset);  // read whole, and good
    return data;
  }
  // (A body found resident by fileReady() a moment ago: its first chunk is
  // read without waiting; the rest may have left the page cache since.)
  bool nextIsInMemory() const override { return index_ >= chunks_ || (pinned_ && index_ == 0); }

 private:
  // Damaged, or removed while we read (its range reads as zeros, or its
  // file is cut back): the store tells apart.
  Status corrupt(Status s) {
    if (store_->reportCorrupt(meta_key_, record_->object_id)) return s;
    return Status::unavailable("object removed while reading");
  }

  RocksStore* store_;
  std::string meta_key_;
  std::shared_ptr<const fmt::MetaRecord> record_;
  std::shared_ptr<BodySegment> segment_;
  uint64_t chunks_;
  uint64_t index_ = 0;
  std::unique_ptr<char[]> buf_;
  std::optional<Hasher64> hasher_;  // for bodies of more than one chunk
  bool pinned_ = false;
};

// ---- writer ----

class RocksObjectWriter final : public ObjectWriter {
 public:
  RocksObjectWriter(RocksStore* store, std::string meta_key, EntryMeta meta, uint64_t object_id)
      : store_(store),
        meta_key_(std::move(meta_key)),
        meta_(std::move(meta)),
        id_(object_id),
        to_files_(store->options_.body_files) {}
  ~RocksObjectWriter() override { abort(); }

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
      size_t take = std::min(chunk - pending_.size(), data.size());
      pending_.append(data.substr(0, take));
      data.remove_prefix(take);
      if (pending_.size() == chunk) {
        if (Status space = store_->checkDiskSpace(chunk); !space.isOk()) {
          abort();
          return space;
        }
        if (to_files_) {
          if (Status s = writeToFile(); !s.isOk()) {
            abort();
            return s;
          }
          continue;
        }
        rocksdb::WriteBatch batch;
        if (chunks_ == 0) batch.Put(store_->sys_, fmt::pendingKey(id_), rocksdb::Slice());
        batch.Put(store_->body_, fmt::chunkKey(id_, chunks_), fmt::encodeChunk(pending_));
        Status s = store_->write(&batch, "object body");
        if (!s.isOk()) {
          abort();
          return s;
        }
        ++chunks_;
        pending_.clear();
      }
    }
    return Status::ok();
  }

  Status commit() override;

  void abort() override {
    if (done_) return;
    done_ = true;
    if (lease_) {
      store_->files_->finish(*lease_, written_, false);
      return;
    }
    if (to_files_ || chunks_ == 0) return;
    rocksdb::WriteBatch batch;
    for (uint32_t i = 0; i < chunks_; ++i) batch.Delete(store_->body_, fmt::chunkKey(id_, i));
    batch.Delete(store_->sys_, fmt::pendingKey(id_));
    // If this fails too, the pending marker stays: the next open removes
    // the chunks.
    (void)store_->write(&batch, "abandoned object");
  }

 private:
  RocksStore* store_;
  std::string meta_key_;
  EntryMeta meta_;
  uint64_t id_;
  uint64_t size_ = 0;
  uint32_t chunks_ = 0;
  // Writes the chunk gathered in pending_ to the body file, taking a place
  // in a segment with the first one (an empty body takes none). A new
  // segment, when one is needed, is named by this object's id: never used
  // before by any segment.
  Status writeToFile() {
    if (!lease_) {
      TERN_ASSIGN_OR_RETURN(lease_, store_->files_->lease(id_));
    }
    const uint64_t at = lease_->offset + written_;
    Status s = store_->files_->write(*lease_, at, pending_);
    // Counted even when the write failed partway (a full disk): what it
    // left is punched out with the rest, and no later body starts in it.
    written_ += pending_.size();
    if (!s.isOk()) return s;
    sums_.push_back(checksum32(pending_));
    ++chunks_;
    pending_.clear();
    return Status::ok();
  }

  std::string pending_;
  Hasher64 hasher_;
  const bool to_files_;                    // the body goes to a body file
  std::optional<BodyFiles::Lease> lease_;  // its place, from its first chunk
  uint64_t written_ = 0;                   // bytes written there
  std::vector<uint32_t> sums_;             // of the chunks written there
  bool done_ = false;
};

Status RocksObjectWriter::commit() {
  if (done_) return Status::failedPrecondition("writer finished");
  RocksStore& st = *store_;
  rocksdb::WriteBatch batch;
  std::optional<fmt::BodyFileRef> file;
  // A small body still whole in pending_ stays in RocksDB (as a chunk).
  const bool small = !lease_ && size_ < st.options_.min_file_body_bytes;
  if (to_files_ && !small) {
    if (!pending_.empty()) {
      if (Status s = writeToFile(); !s.isOk()) {
        abort();
        return s;
      }
    }
  }
  if (lease_) {
    file.emplace();
    file->segment = lease_->segment->id();
    file->offset = lease_->offset;
    if (chunks_ > 1) file->chunk_sums = std::move(sums_);  // one chunk: the body hash covers it
  } else {
    if (!pending_.empty()) {
      batch.Put(st.body_, fmt::chunkKey(id_, chunks_), fmt::encodeChunk(pending_));
    }
    if (chunks_ > 0) batch.Delete(st.sys_, fmt::pendingKey(id_));
  }
  meta_.body_size = size_;
  meta_.body_hash = hasher_.digest();

  std::lock_guard lock(st.mu_);
  PurgeVerdict verdict = st.judgeLocked(meta_key_, meta_);
  if (verdict == PurgeVerdict::kGone) {
    abort();
    return Status::failedPrecondition("purged while being fetched");
  }
  if (verdict == PurgeVerdict::kStale) meta_.stale = true;

  fmt::MetaRecord record{meta_, id_, st.options_.chunk_bytes, std::move(file)};
  std::string value = fmt::encodeMeta(record);

  // Replace an older version of this object.
  std::string old;
  RocksStore::Removals removals;
  if (st.db_->Get(rocksdb::ReadOptions(), st.meta_, meta_key_, &old).ok()) {
    st.deleteObjectLocked(&batch, meta_key_, old, &removals);
  }
  // Cap the variants of one URL: drop the oldest response beyond the cap.
  // Only responses selected by Vary have variant ids; the rest skip the scan.
  if (meta_.kind == EntryKind::kResponse && st.options_.max_variants_per_url > 0 &&
      !meta_key_.ends_with(std::string_view("\0", 1))) {
    fmt::MetaKeyParts parts;
    if (fmt::parseMetaKey(meta_key_, &parts)) {
      std::string prefix(parts.host);
      prefix.push_back(fmt::kSep);
      prefix.append(parts.path_query).push_back(fmt::kSep);
      std::unique_ptr<rocksdb::Iterator> it(st.db_->NewIterator(rocksdb::ReadOptions(), st.meta_));
      size_t variants = 0;
      std::string oldest_key, oldest_value;
      int64_t oldest_time = std::numeric_limits<int64_t>::max();
      for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
        if (it->key().ToStringView() == meta_key_) continue;
        auto rec = fmt::decodeMeta(it->value().ToStringView());
        if (!rec.ok() || rec->meta.kind != EntryKind::kResponse) continue;
        ++variants;
        if (rec->meta.response_time_ms < oldest_time) {
          oldest_time = rec->meta.response_time_ms;
          oldest_key = it->key().ToString();
          oldest_value = it->value().ToString();
        }
      }
      if (variants >= st.options_.max_variants_per_url && !oldest_key.empty()) {
        st.deleteObjectLocked(&batch, oldest_key, oldest_value, &removals);
      }
    }
  }

  batch.Put(st.meta_, meta_key_, value);
  for (const auto& tag : meta_.tags) {
    batch.Put(st.tags_, fmt::tagKey(tag, meta_key_), fmt::encodeBigEndian64(id_));
  }
  const int64_t bytes = static_cast<int64_t>(size_ + value.size());
  batch.Merge(st.sys_, fmt::kBytesCounterKey, delta(bytes));
  batch.Merge(st.sys_, fmt::kObjectsCounterKey, delta(1));
  Status s = st.write(&batch, "object");
  if (!s.isOk()) {
    abort();
    return s;
  }
  done_ = true;
  if (lease_) st.files_->finish(*lease_, written_, true);
  st.applyRemovalsLocked(removals);
  st.bytes_ += bytes;
  st.objects_ += 1;
  uint64_t h = objectHash(meta_key_);
  st.index_[h] = {meta_key_, static_cast<uint64_t>(bytes)};
  st.policy_->insert(h, static_cast<uint64_t>(bytes));
  st.evictToBudget();
  return Status::ok();
}

// ---- store ----

RocksStore::RocksStore(const RocksStoreOptions& options)
    : options_(options),
      policy_(makeEvictionPolicy(options.eviction, options.budget_bytes)),
      meta_cache_(options.meta_cache_bytes) {
  if (options_.chunk_bytes == 0) options_.chunk_bytes = fmt::kDefaultChunkBytes;
}

RocksStore::~RocksStore() {
  {
    std::lock_guard lock(bg_mu_);
    bg_stop_ = true;
  }
  bg_cv_.notify_all();
  if (bg_thread_.joinable()) bg_thread_.join();
  if (db_) {
    // Flush memtables so that the next open has no write-ahead log to replay.
    rocksdb::FlushOptions flush;
    flush.wait = true;
    std::vector<rocksdb::ColumnFamilyHandle*> all = {sys_, meta_, body_, tags_};
    // Failures here lose nothing: the write-ahead log is replayed at the
    // next open.
    if (auto fs = db_->Flush(flush, all); !fs.ok())
      TERN_LOG(kWarn, "cache store flush at close failed", {{"reason", fs.ToString()}});
    for (auto* cf : {meta_, body_, tags_}) {
      if (cf != nullptr) (void)db_->DestroyColumnFamilyHandle(cf);
    }
    if (auto s = db_->Close(); !s.ok())
      TERN_LOG(kWarn, "cache store close failed", {{"reason", s.ToString()}});
  }
}

Result<std::unique_ptr<RocksStore>> RocksStore::open(const RocksStoreOptions& options) {
  if (options.path.empty()) return Status::invalidArgument("store path is empty");
  std::unique_ptr<RocksStore> store(new RocksStore(options));
  Status s = store->openDb(&store->report_);
  if (s.isOk()) s = store->load();
  if (!s.isOk()) {
    // Another process holds the store: never move a live store aside.
    if (isHeldElsewhere(s))
      return Status::failedPrecondition("store is in use by another process: " + s.message());
    store.reset(new RocksStore(options));
    std::string aside = options.path + ".broken-" + std::to_string(wallNowMs());
    std::error_code ec;
    fs::rename(options.path, aside, ec);
    if (ec) return Status::ioError("cannot move broken store aside: " + ec.message());
    TERN_LOG(kError, "cache store could not be opened; moved aside and starting empty",
             {{"path", options.path}, {"moved_to", aside}, {"reason", s.toString()}});
    store->report_.recreated = true;
    store->report_.moved_aside_to = aside;
    store->report_.reason = s.toString();
    TERN_RETURN_IF_ERROR(store->openDb(&store->report_));
    TERN_RETURN_IF_ERROR(store->load());
  }
  // The body files, once the database is known good. Failing here (too few
  // descriptors, say) is not a broken store: nothing is moved aside.
  auto files = BodyFiles::open(options.path + "/" + std::string(fmt::kBodyFilesDir),
                               options.body_segment_bytes,
                               static_cast<int64_t>(options.sent_body_grace_ms) * 1000);
  if (!files.ok()) return files.status();
  store->files_ = std::move(*files);
  if (options.background) {
    store->bg_thread_ = std::thread([raw = store.get()] {
      setThreadName("store-maint");
      raw->backgroundLoop();
    });
  } else {
    store->loadIndex();
  }
  return store;
}

Status RocksStore::openDb(OpenReport*) {
  std::error_code ec;
  fs::create_directories(options_.path, ec);
  if (ec) return Status::ioError("cannot create " + options_.path + ": " + ec.message());

  rocksdb::Options db_opts;
  db_opts.create_if_missing = true;
  db_opts.create_missing_column_families = true;
  db_opts.paranoid_checks = true;
  db_opts.max_background_jobs = 2;
  db_opts.keep_log_file_num = 3;
  // Bounds the log replayed after a crash, and so the restart time.
  db_opts.max_total_wal_size = 64ULL << 20;
  if (options_.env) {
    db_opts.env = options_.env;
  } else if (options_.nonblocking_reads) {
    if (!nowait_env_) {
      nowait_env_ = rocksdb::NewCompositeEnv(nowaitFileSystem(rocksdb::FileSystem::Default()));
    }
    db_opts.env = nowait_env_.get();
  }

  auto cache = rocksdb::NewLRUCache(options_.block_cache_bytes);
  auto table_for = [&](bool bloom) {
    rocksdb::BlockBasedTableOptions t;
    t.block_cache = cache;
    t.cache_index_and_filter_blocks = true;
    if (bloom) t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    return rocksdb::NewBlockBasedTableFactory(t);
  };
  rocksdb::ColumnFamilyOptions sys_opts;
  sys_opts.merge_operator = std::make_shared<AddOperator>();
  rocksdb::ColumnFamilyOptions meta_opts;
  meta_opts.table_factory.reset(table_for(true));
  meta_opts.compression = rocksdb::kLZ4Compression;
  rocksdb::ColumnFamilyOptions body_opts;
  body_opts.table_factory.reset(table_for(true));
  body_opts.compression = rocksdb::kNoCompression;  // bodies are mostly compressed already
  body_opts.write_buffer_size = 64ULL << 20;
  rocksdb::ColumnFamilyOptions tag_opts;
  tag_opts.table_factory.reset(table_for(false));
  tag_opts.compression = rocksdb::kLZ4Compression;

  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, sys_opts},
      {std::string(fmt::kMetaFamily), meta_opts},
      {std::string(fmt::kBodyFamily), body_opts},
      {std::string(fmt::kTagFamily), tag_opts},
  };
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db_opts, options_.path, families, &handles, &raw);
  if (!s.ok()) return fromRocks(s);
  db_.reset(raw);
  sys_ = handles[0];
  meta_ = handles[1];
  body_ = handles[2];
  tags_ = handles[3];
  // The default family handle is owned by the DB; keep ours out of the destructor list.
  db_->DestroyColumnFamilyHandle(sys_).PermitUncheckedError();
  sys_ = db_->DefaultColumnFamily();
  return Status::ok();
}

Status RocksStore::load() {
  rocksdb::ReadOptions ro;
  std::string v;
  uint64_t x = 0;

  rocksdb::Status s = db_->Get(ro, sys_, fmt::kFormatKey, &v);
  if (s.IsNotFound()) {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    TERN_RETURN_IF_ERROR(
        fromRocks(db_->Put(wo, sys_, fmt::kFormatKey, fmt::encodeFixed64(fmt::kFormatVersion))));
  } else if (!s.ok()) {
    return fromRocks(s);
  } else if (!fmt::decodeFixed64(v, &x) || x < fmt::kOldestReadableVersion ||
             x > fmt::kFormatVersion) {
    return Status::corruption("unsupported store format version");
  } else if (x != fmt::kFormatVersion) {
    // An older store: its records stay readable; it is marked with this
    // version, since the records written from now on are of this version
    // (a release that knows only the older one then moves it aside instead
    // of misreading them).
    rocksdb::WriteOptions wo;
    wo.sync = true;
    TERN_RETURN_IF_ERROR(
        fromRocks(db_->Put(wo, sys_, fmt::kFormatKey, fmt::encodeFixed64(fmt::kFormatVersion))));
    TERN_LOG(kInfo, "store format upgraded",
             {{"from", std::to_string(x)}, {"to", std::to_string(fmt::kFormatVersion)}});
  }

  auto readU64 = [&](std::string_view key, uint64_t* out) -> Status {
    *out = 0;
    rocksdb::Status rs = db_->Get(ro, sys_, slice(key), &v);
    if (rs.IsNotFound()) return Status::ok();
    if (!rs.ok()) return fromRocks(rs);
    if (!fmt::decodeFixed64(v, out)) return Status::corruption("bad record " + std::string(key));
    return Status::ok();
  };
  uint64_t applied = 0, floor = 0, hwm = 0, bytes = 0, objects = 0;
  TERN_RETURN_IF_ERROR(readU64(fmt::kAppliedSeqKey, &applied));
  TERN_RETURN_IF_ERROR(readU64(fmt::kPurgeFloorKey, &floor));
  TERN_RETURN_IF_ERROR(readU64(fmt::kObjectIdKey, &hwm));
  TERN_RETURN_IF_ERROR(readU64(fmt::kBytesCounterKey, &bytes));
  TERN_RETURN_IF_ERROR(readU64(fmt::kObjectsCounterKey, &objects));
  applied_seq_ = applied;
  bytes_ = static_cast<int64_t>(bytes);
  objects_ = static_cast<int64_t>(objects);

  {
    std::unique_lock lock(filter_mu_);
    filter_.setFloor(floor);
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, sys_));
    for (it->Seek(slice(fmt::kMarkerPrefix));
         it->Valid() && it->key().starts_with(slice(fmt::kMarkerPrefix)); it->Next()) {
      auto marker = fmt::decodeMarker(it->key().ToStringView(), it->value().ToStringView());
      if (!marker.ok()) return marker.status();
      filter_.restore(*marker);
    }
    if (!it->status().ok()) return fromRocks(it->status());
  }

  // Remove chunks of objects that were being written when the process died.
  rocksdb::WriteBatch cleanup;
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, sys_));
    for (it->Seek(slice(fmt::kPendingPrefix));
         it->Valid() && it->key().starts_with(slice(fmt::kPendingPrefix)); it->Next()) {
      std::string_view id_bytes = it->key().ToStringView().substr(fmt::kPendingPrefix.size());
      if (id_bytes.size() != 8) continue;
      uint64_t id = 0;
      for (char c : id_bytes) id = (id << 8) | static_cast<uint8_t>(c);
      cleanup.DeleteRange(body_, fmt::chunkKey(id, 0), fmt::chunkKey(id + 1, 0));
      cleanup.Delete(sys_, it->key());
      ++report_.pending_removed;
    }
  }

  // Reserve a new block of object ids; ids of the old block are never reused.
  next_object_id_ = hwm;
  object_id_limit_ = hwm + std::max<uint64_t>(1, options_.object_id_block);
  cleanup.Put(sys_, fmt::kObjectIdKey, fmt::encodeFixed64(object_id_limit_));
  rocksdb::WriteOptions wo;
  wo.sync = true;
  TERN_RETURN_IF_ERROR(fromRocks(db_->Write(wo, &cleanup)));
  if (report_.pending_removed > 0) {
    TERN_LOG(kWarn, "removed half-written objects left by a crash",
             {{"path", options_.path}, {"count", std::to_string(report_.pending_removed)}});
  }
  return Status::ok();
}

Status RocksStore::checkDiskSpace(uint64_t bytes) {
  // Re-read the free space at most every 50 ms, and subtract what was
  // written since, so that a burst cannot overshoot the reserve.
  int64_t now = steadyNowUs();
  if (now - disk_checked_us_.load(std::memory_order_relaxed) > 50000) {
    struct statvfs vfs;
    if (::statvfs(options_.path.c_str(), &vfs) == 0) {
      disk_free_bytes_ = static_cast<int64_t>(vfs.f_bavail) * static_cast<int64_t>(vfs.f_frsize);
      disk_checked_us_ = now;
    }
  }
  int64_t left =
      disk_free_bytes_.fetch_sub(static_cast<int64_t>(bytes)) - static_cast<int64_t>(bytes);
  if (left < static_cast<int64_t>(options_.min_free_disk_bytes)) {
    return Status::resourceExhausted(
        "disk nearly full: " + std::to_string(std::max<int64_t>(left, 0)) +
        " bytes free, reserve " + std::to_string(options_.min_free_disk_bytes));
  }
  return Status::ok();
}

Result<uint64_t> RocksStore::allocateObjectId() {
  if (next_object_id_ >= object_id_limit_) {
    const uint64_t limit = next_object_id_ + std::max<uint64_t>(1, options_.object_id_block);
    rocksdb::WriteOptions wo;
    wo.sync = true;
    auto s = db_->Put(wo, sys_, fmt::kObjectIdKey, fmt::encodeFixed64(limit));
    if (!s.ok()) {
      // Handing out ids past the persisted limit could repeat them after a
      // crash: no id (and no write) until the block is on disk.
      write_failures_ += 1;
      TERN_LOG(kError, "cannot persist object id block", {{"reason", s.ToString()}});
      return fromRocks(s);
    }
    object_id_limit_ = limit;
  }
  return next_object_id_++;
}

PurgeVerdict RocksStore::judgeLocked(const std::string& meta_key, const EntryMeta& meta) const {
  fmt::MetaKeyParts parts;
  if (!fmt::parseMetaKey(meta_key, &parts)) return PurgeVerdict::kGone;
  std::shared_lock lock(filter_mu_);
  PurgeVerdict v = filter_.check(parts.host, urlIdOf(parts), meta.tags, meta.store_seq);
  if (v == PurgeVerdict::kValid && meta.store_seq < filter_.floor()) v = PurgeVerdict::kStale;
  return v;
}

Result<LookupResult> RocksStore::lookup(const ObjectKey& key) {
  std::string meta_key = fmt::metaKey(key);
  std::shared_ptr<const fmt::MetaRecord> record = meta_cache_.find(meta_key);
  if (record) {
    meta_cache_hits_.fetch_add(1, std::memory_order_relaxed);
  } else {
    const MetaCache::Ticket ticket = meta_cache_.ticket(meta_key);
    std::string value;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), meta_, meta_key, &value);
    if (s.IsNotFound()) return Status::notFound();
    if (!s.ok()) return fromRocks(s);
    auto decoded = fmt::decodeMeta(value);
    if (!decoded.ok()) {
      reportCorrupt(meta_key, std::numeric_limits<uint64_t>::max());
      return decoded.status();
    }
    if (meta_cache_.enabled()) meta_cache_misses_.fetch_add(1, std::memory_order_relaxed);
    record = std::make_shared<const fmt::MetaRecord>(std::move(*decoded));
    // Charged at about what the decoded record holds: its bytes, a field's
    // two strings for each field (short ones inline), the key, and the
    // bookkeeping around them.
    const auto& m = record->meta;
    const size_t items = m.headers.size() + m.vary_fields.size() + m.tags.size();
    meta_cache_.insert(ticket, meta_key, record,
                       value.size() + items * sizeof(HeaderField) + 2 * meta_key.size() + 256);
  }
  PurgeVerdict verdict;
  {
    fmt::MetaKeyParts parts;
    fmt::parseMetaKey(meta_key, &parts);
    std::shared_lock lock(filter_mu_);
    verdict = filter_.check(parts.host, urlIdOf(parts), record->meta.tags, record->meta.store_seq);
  }
  if (verdict == PurgeVerdict::kGone) return Status::notFound("purged");
  {
    std::unique_lock lock(mu_, std::try_to_lock);  // a hit never waits for writers
    if (lock.owns_lock()) policy_->touch(objectHash(meta_key));
  }
  LookupResult out;
  out.must_revalidate = verdict == PurgeVerdict::kStale || record->meta.stale;
  if (record->meta.kind == EntryKind::kResponse) {
    if (record->file) {
      auto segment = files_->find(record->file->segment);
      if (!segment) {
        // Removed since the record was read (the segment goes once nothing
        // in it is live), or lost: the store tells apart.
        reportCorrupt(meta_key, record->object_id);
        return Status::notFound("body file gone");
      }
      out.body =
          std::make_unique<FileBodyReader>(this, std::move(meta_key), record, std::move(segment));
    } else {
      out.body = std::make_unique<RocksBodyReader>(this, std::move(meta_key), *record);
    }
  }
  // The metadata handed out is the record kept (or just read): no copy.
  out.meta = std::shared_ptr<const EntryMeta>(record, &record->meta);
  return out;
}

Result<std::unique_ptr<ObjectWriter>> RocksStore::beginWrite(const ObjectKey& key, EntryMeta meta) {
  for (const auto& tag : meta.tags) {
    if (!isValidTag(tag)) return Status::invalidArgument("invalid surrogate key");
  }
  if (key.url.host.empty()) return Status::invalidArgument("empty host");
  TERN_RETURN_IF_ERROR(checkDiskSpace(4096));
  uint64_t id;
  {
    std::lock_guard lock(mu_);
    TERN_ASSIGN_OR_RETURN(id, allocateObjectId());
  }
  return std::unique_ptr<ObjectWriter>(
      std::make_unique<RocksObjectWriter>(this, fmt::metaKey(key), std::move(meta), id));
}

Status RocksStore::updateMeta(const ObjectKey& key, EntryMeta meta) {
  for (const auto& tag : meta.tags) {
    if (!isValidTag(tag)) return Status::invalidArgument("invalid surrogate key");
  }
  std::string meta_key = fmt::metaKey(key);
  std::lock_guard lock(mu_);
  std::string old;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), meta_, meta_key, &old);
  if (s.IsNotFound()) return Status::notFound();
  if (!s.ok()) return fromRocks(s);
  auto record = fmt::decodeMeta(old);
  if (!record.ok()) return record.status();

  meta.body_size = record->meta.body_size;
  meta.body_hash = record->meta.body_hash;
  meta.kind = record->meta.kind;
  PurgeVerdict verdict = judgeLocked(meta_key, meta);
  if (verdict != PurgeVerdict::kValid) meta.stale = true;  // revalidated before a purge landed

  rocksdb::WriteBatch batch;
  for (const auto& tag : record->meta.tags) batch.Delete(tags_, fmt::tagKey(tag, meta_key));
  fmt::MetaRecord updated{std::move(meta), record->object_id, record->chunk_bytes,
                          std::move(record->file)};
  for (const auto& tag : updated.meta.tags) {
    batch.Put(tags_, fmt::tagKey(tag, meta_key), fmt::encodeBigEndian64(record->object_id));
  }
  std::string value = fmt::encodeMeta(updated);
  batch.Put(meta_, meta_key, value);
  int64_t d = static_cast<int64_t>(value.size()) - static_cast<int64_t>(old.size());
  batch.Merge(sys_, fmt::kBytesCounterKey, delta(d));
  TERN_RETURN_IF_ERROR(write(&batch, "metadata update"));
  bytes_ += d;
  return Status::ok();
}

void RocksStore::deleteObjectLocked(rocksdb::WriteBatch* batch, const std::string& meta_key,
                                    const std::string& meta_value, Removals* removals) {
  batch->Delete(meta_, meta_key);
  int64_t bytes = static_cast<int64_t>(meta_value.size());
  auto record = fmt::decodeMeta(meta_value);
  if (record.ok()) {
    if (record->file) {
      removals->extents.push_back(
          {record->file->segment, record->file->offset, record->meta.body_size});
    } else {
      uint64_t n = chunkCount(record->meta.body_size, record->chunk_bytes);
      for (uint64_t i = 0; i < n; ++i) {
        batch->Delete(body_, fmt::chunkKey(record->object_id, static_cast<uint32_t>(i)));
      }
    }
    for (const auto& tag : record->meta.tags) batch->Delete(tags_, fmt::tagKey(tag, meta_key));
    bytes += static_cast<int64_t>(record->meta.body_size);
  }
  batch->Merge(sys_, fmt::kBytesCounterKey, delta(-bytes));
  batch->Merge(sys_, fmt::kObjectsCounterKey, delta(-1));
  removals->bytes += bytes;
  removals->objects += 1;
  removals->hashes.push_back(objectHash(meta_key));
}

void RocksStore::applyRemovalsLocked(const Removals& removals) {
  bytes_ -= removals.bytes;
  objects_ -= removals.objects;
  for (uint64_t h : removals.hashes) {
    index_.erase(h);
    policy_->remove(h);
  }
  for (const auto& extent : removals.extents) files_->release(extent);
}

namespace {

// The metadata keys a batch puts or deletes.
class MetaKeysOf final : public rocksdb::WriteBatch::Handler {
 public:
  explicit MetaKeysOf(uint32_t meta_family) : family_(meta_family) {}
  rocksdb::Status PutCF(uint32_t cf, const rocksdb::Slice& key, const rocksdb::Slice&) override {
    return add(cf, key);
  }
  rocksdb::Status DeleteCF(uint32_t cf, const rocksdb::Slice& key) override { return add(cf, key); }
  rocksdb::Status SingleDeleteCF(uint32_t cf, const rocksdb::Slice& key) override {
    return add(cf, key);
  }
  rocksdb::Status MergeCF(uint32_t cf, const rocksdb::Slice& key, const rocksdb::Slice&) override {
    return add(cf, key);
  }
  // The store never deletes metadata by range; were it to, every key of the
  // range would have to be forgotten, which this cannot list.
  rocksdb::Status DeleteRangeCF(uint32_t cf, const rocksdb::Slice&,
                                const rocksdb::Slice&) override {
    if (cf == family_) all_ = true;
    return rocksdb::Status::OK();
  }
  void LogData(const rocksdb::Slice&) override {}

  std::vector<std::string_view> keys;
  bool all_ = false;

 private:
  rocksdb::Status add(uint32_t cf, const rocksdb::Slice& key) {
    if (cf == family_) keys.push_back(key.ToStringView());
    return rocksdb::Status::OK();
  }
  uint32_t family_;
};

}  // namespace

Status RocksStore::write(rocksdb::WriteBatch* batch, const char* what) {
  // The metadata keys of the batch are not kept, nor read into the cache,
  // from before the write until after it (storage/rocksdb/meta_cache.h).
  std::optional<MetaCache::Writing> writing;
  if (meta_cache_.enabled()) {
    MetaKeysOf touched(meta_->GetID());
    const bool listed = batch->Iterate(&touched).ok() && !touched.all_;
    writing.emplace(meta_cache_.writing(touched.keys, !listed));
  }
  Status s = fromRocks(db_->Write(rocksdb::WriteOptions(), batch));
  if (!s.isOk()) {
    write_failures_ += 1;
    TERN_LOG(kError, "cache store write failed", {{"what", what}, {"reason", s.toString()}});
  }
  return s;
}

bool RocksStore::reportCorrupt(const std::string& meta_key, uint64_t object_id) {
  std::lock_guard lock(mu_);
  std::string value;
  if (!db_->Get(rocksdb::ReadOptions(), meta_, meta_key, &value).ok()) return false;
  auto record = fmt::decodeMeta(value);
  // A reader that lost its chunks because the object was replaced is not
  // corruption: only remove the object that the reader was reading.
  if (record.ok() && record->object_id != object_id) return false;
  corrupt_ += 1;
  TERN_LOG(kError, "corrupt cache object removed",
           {{"key_hash", std::to_string(hash64(meta_key))}});
  rocksdb::WriteBatch batch;
  Removals removals;
  deleteObjectLocked(&batch, meta_key, value, &removals);
  // If the removal fails, the object stays and is found corrupt again.
  if (write(&batch, "removal of a corrupt object").isOk()) applyRemovalsLocked(removals);
  return true;
}

Status RocksStore::removeUrl(const CacheKey& url) {
  std::string prefix = fmt::urlPrefix(url);
  std::lock_guard lock(mu_);
  rocksdb::WriteBatch batch;
  Removals removals;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), meta_));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    deleteObjectLocked(&batch, it->key().ToString(), it->value().ToString(), &removals);
  }
  TERN_RETURN_IF_ERROR(fromRocks(it->status()));
  TERN_RETURN_IF_ERROR(write(&batch, "removal of a URL"));
  applyRemovalsLocked(removals);
  return Status::ok();
}

Status RocksStore::applyPurge(const PurgeSpec& spec) { return applyPurges({spec}); }

Status RocksStore::applyPurges(const std::vector<PurgeSpec>& specs) {
  std::lock_guard serial(purge_mu_);
  uint64_t applied = appliedSeq();
  std::vector<const PurgeSpec*> todo;
  for (const auto& spec : specs) {
    if (spec.seq == 0) return Status::invalidArgument("purge sequence must be > 0");
    if (spec.seq <= applied) continue;  // already applied: idempotent
    for (const auto& sel : spec.selectors) {
      if (sel.kind == SelectorKind::kTag && !isValidTag(sel.value)) {
        return Status::invalidArgument("invalid tag selector");
      }
    }
    todo.push_back(&spec);
    applied = spec.seq;
  }
  if (todo.empty()) return Status::ok();

  // Compute the new marker states on a copy, persist them with the applied
  // sequence in one synced batch, then publish them to lookups.
  PurgeFilter preview;
  {
    std::shared_lock lock(filter_mu_);
    for (const auto* spec : todo) {
      for (const auto& sel : spec->selectors) {
        preview.restore({sel.kind, sel.value, filter_.get(sel.kind, sel.value)});
      }
    }
  }
  rocksdb::WriteBatch batch;
  for (const auto* spec : todo) {
    for (const auto& m : preview.add(*spec)) {
      batch.Put(sys_, format::markerKey(m.kind, m.value), format::encodeMark(m.mark));
    }
  }
  batch.Put(sys_, fmt::kAppliedSeqKey, fmt::encodeFixed64(applied));
  rocksdb::WriteOptions wo;
  wo.sync = true;
  TERN_RETURN_IF_ERROR(fromRocks(db_->Write(wo, &batch)));
  {
    std::unique_lock lock(filter_mu_);
    for (const auto* spec : todo) filter_.add(*spec);
    applied_seq_.store(applied, std::memory_order_release);
  }
  {
    std::lock_guard lock(bg_mu_);
    bg_wakeup_ = true;
  }
  bg_cv_.notify_all();
  return Status::ok();
}

StoreStats RocksStore::stats() const {
  StoreStats st;
  st.objects = static_cast<uint64_t>(std::max<int64_t>(objects_.load(), 0));
  st.bytes = static_cast<uint64_t>(std::max<int64_t>(bytes_.load(), 0));
  st.budget_bytes = options_.budget_bytes;
  st.evictions = evictions_.load();
  st.corrupt_objects = corrupt_.load();
  st.write_failures = write_failures_.load();
  st.applied_seq = appliedSeq();
  st.meta_cache_hits = meta_cache_hits_.load(std::memory_order_relaxed);
  st.meta_cache_misses = meta_cache_misses_.load(std::memory_order_relaxed);
  st.meta_cache_bytes = meta_cache_.bytes();
  const BodyFiles::Stats files = files_->stats();
  st.body_files = files.segments;
  st.body_file_bytes = files.disk_bytes;
  std::shared_lock lock(filter_mu_);
  st.purge_markers = filter_.size();
  return st;
}

void RocksStore::evictToBudget() {
  auto over = [&](const Removals& pending) {
    return static_cast<uint64_t>(std::max<int64_t>(bytes_.load() - pending.bytes, 0)) >
           options_.budget_bytes;
  };
  rocksdb::WriteBatch batch;
  Removals removals;
  std::vector<std::pair<uint64_t, uint64_t>> victims;  // hash, bytes: back into the policy
  // Writes what is chosen so far; if the write fails, the victims stay
  // (stored and in the policy) and the eviction stops until the next store.
  auto flush = [&] {
    if (removals.objects == 0) return true;
    const bool ok = write(&batch, "eviction").isOk();
    if (ok) {
      applyRemovalsLocked(removals);
      evictions_ += static_cast<uint64_t>(removals.objects);
    } else {
      for (const auto& [h, bytes] : victims) policy_->insert(h, bytes);
    }
    batch.Clear();
    removals = {};
    victims.clear();
    return ok;
  };
  while (over(removals)) {
    auto victim = policy_->evict();
    if (!victim) break;
    auto it = index_.find(*victim);
    if (it == index_.end()) continue;
    std::string meta_key = it->second.meta_key;
    std::string value;
    if (!db_->Get(rocksdb::ReadOptions(), meta_, meta_key, &value).ok()) {
      index_.erase(it);  // already gone
      continue;
    }
    victims.emplace_back(*victim, it->second.bytes);
    deleteObjectLocked(&batch, meta_key, value, &removals);
    if (removals.objects >= 256 && !flush()) return;
  }
  flush();
}

void RocksStore::waitForIndex() {
  while (!index_loaded_.load()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
}

void RocksStore::loadIndex() {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), meta_));
  std::vector<std::pair<std::string, uint64_t>> pending;
  std::vector<BodyFiles::Extent> live;  // bodies in segments found at open
  auto flush = [&] {
    std::lock_guard lock(mu_);
    for (auto& [key, bytes] : pending) {
      uint64_t h = objectHash(key);
      if (index_.contains(h)) continue;  // written since we started
      index_[h] = {std::move(key), bytes};
      policy_->insert(h, bytes);
    }
    pending.clear();
  };
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto record = fmt::decodeMeta(it->value().ToStringView());
    uint64_t bytes = it->value().size() + (record.ok() ? record->meta.body_size : 0);
    pending.emplace_back(it->key().ToString(), bytes);
    if (record.ok() && record->file && files_->foundAtOpen(record->file->segment)) {
      live.push_back({record->file->segment, record->file->offset, record->meta.body_size});
    }
    if (pending.size() >= 4096) {
      flush();
      std::lock_guard lock(bg_mu_);
      if (bg_stop_) return;
    }
  }
  flush();
  if (it->status().ok()) {
    // The view holds every body committed before open; what else the
    // segments found at open hold was never committed, or is removed.
    files_->reclaim(live);
  } else {
    TERN_LOG(kWarn, "cache store index scan failed", {{"reason", it->status().ToString()}});
  }
  index_loaded_ = true;
  std::lock_guard lock(mu_);
  evictToBudget();
}

void RocksStore::cleanupMarkers() {
  std::lock_guard pass(maintenance_mu_);
  std::vector<PurgeMarker> markers;
  {
    std::shared_lock lock(filter_mu_);
    markers = filter_.markers();
  }
  for (const auto& marker : markers) {
    // Judges the collected metadata keys against the marker and deletes or
    // flags what it matches.  REQUIRES: mu_ held.
    std::vector<std::string> keys;
    bool failed = false;  // a batch was not written: the marker must stay
    auto processLocked = [&] {
      rocksdb::WriteBatch batch;
      Removals removals;
      for (const auto& key : keys) {
        std::string value;
        if (!db_->Get(rocksdb::ReadOptions(), meta_, key, &value).ok()) continue;
        auto record = fmt::decodeMeta(value);
        if (!record.ok()) continue;
        if (marker.kind == SelectorKind::kTag &&
            std::find(record->meta.tags.begin(), record->meta.tags.end(), marker.value) ==
                record->meta.tags.end()) {
          continue;
        }
        if (marker.kind == SelectorKind::kUrl || marker.kind == SelectorKind::kPrefix) {
          fmt::MetaKeyParts parts;
          if (!fmt::parseMetaKey(key, &parts)) continue;
          std::string url_id = urlIdOf(parts);
          if (!url_id.starts_with(marker.value)) continue;
          if (marker.kind == SelectorKind::kUrl && url_id != marker.value) continue;
        }
        PurgeVerdict v = judge(marker.mark, record->meta.store_seq);
        if (v == PurgeVerdict::kGone) {
          deleteObjectLocked(&batch, key, value, &removals);
        } else if (v == PurgeVerdict::kStale && !record->meta.stale) {
          record->meta.stale = true;
          batch.Put(meta_, key, fmt::encodeMeta(*record));  // same size: counters unchanged
        }
      }
      if (write(&batch, "purge clean-up").isOk())
        applyRemovalsLocked(removals);
      else
        failed = true;
      keys.clear();
    };

    const bool by_tag = marker.kind == SelectorKind::kTag;
    const std::string prefix = by_tag ? fmt::tagPrefix(marker.value) : metaRangeOf(marker);
    std::unique_ptr<rocksdb::Iterator> it;
    {
      // Create the iterator (a consistent view) under mu_: every commit that
      // was judged before this marker existed has then finished its write
      // and is in the view; every later commit is judged against the marker.
      std::lock_guard lock(mu_);
      it.reset(db_->NewIterator(rocksdb::ReadOptions(), by_tag ? tags_ : meta_));
    }
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      keys.push_back(by_tag ? std::string(it->key().ToStringView().substr(prefix.size()))
                            : it->key().ToString());
      if (keys.size() >= 256) {
        std::lock_guard lock(mu_);
        processLocked();
      }
      std::lock_guard stop(bg_mu_);
      if (bg_stop_) return;
    }
    if (!it->status().ok()) {
      TERN_LOG(kWarn, "purge clean-up scan failed", {{"reason", it->status().ToString()}});
      continue;
    }
    std::lock_guard lock(mu_);
    processLocked();
    // Retiring the marker while objects it covers are still stored would
    // bring them back: it stays for the next pass.
    if (failed) continue;
    std::unique_lock filter_lock(filter_mu_);
    if (!filter_.retire(marker)) continue;  // a newer purge reused it; next pass
    rocksdb::WriteBatch batch;
    batch.Delete(sys_, fmt::markerKey(marker.kind, marker.value));
    batch.Put(sys_, fmt::kPurgeFloorKey, fmt::encodeFixed64(filter_.floor()));
    // If this fails the marker stays on disk (it is retired in memory only)
    // and is loaded, and cleaned up, again at the next open: harmless.
    (void)write(&batch, "retired purge marker");
  }
}

void RocksStore::runMaintenanceForTesting() {
  cleanupMarkers();
  files_->punchDue();
}

void RocksStore::backgroundLoop() {
  loadIndex();
  while (true) {
    std::unique_lock lock(bg_mu_);
    bg_cv_.wait_for(lock, std::chrono::seconds(1), [&] { return bg_stop_ || bg_wakeup_; });
    if (bg_stop_) return;
    bg_wakeup_ = false;
    lock.unlock();
    cleanupMarkers();
    files_->punchDue();
  }
}

Status RocksStore::putRawForTesting(std::string_view family, std::string_view key,
                                    std::string_view value) {
  rocksdb::ColumnFamilyHandle* cf = family == fmt::kMetaFamily   ? meta_
                                    : family == fmt::kBodyFamily ? body_
                                    : family == fmt::kTagFamily  ? tags_
                                                                 : sys_;
  auto writing = meta_cache_.writing({key}, false);
  return fromRocks(db_->Put(rocksdb::WriteOptions(), cf, slice(key), slice(value)));
}

}  // namespace tern::storage
