#include "coordinator/log/rocks_purge_log.h"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <chrono>
#include <unordered_map>

#include "common/log.h"
#include "common/thread_name.h"
#include "coordinator/log/log_codec.h"

namespace tern::coordinator {

namespace {

constexpr char kPurgePrefix = 'p';
constexpr char kIdemPrefix = 'i';
constexpr char kEdgePrefix = 'e';
const std::string kHeadKey = "mhead";

std::string be64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 7; i >= 0; --i) {
    s[static_cast<size_t>(i)] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return s;
}

uint64_t fromBe64(std::string_view s) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8 && i < s.size(); ++i) v = (v << 8) | static_cast<unsigned char>(s[i]);
  return v;
}

std::string purgeKey(uint64_t seq) { return std::string(1, kPurgePrefix) + be64(seq); }

Status fromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return Status::ok();
  if (s.IsNoSpace()) return Status::resourceExhausted(std::string(what) + ": " + s.ToString());
  return Status::ioError(std::string(what) + ": " + s.ToString());
}

int64_t wallNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

RocksPurgeLog::RocksPurgeLog(PurgeLogOptions options) : options_(std::move(options)) {}

Result<std::unique_ptr<PurgeLog>> RocksPurgeLog::open(const PurgeLogOptions& options) {
  if (options.retain_count == 0) return Status::invalidArgument("log retention count must be > 0");
  std::unique_ptr<RocksPurgeLog> log(new RocksPurgeLog(options));
  rocksdb::Options ro;
  ro.create_if_missing = true;
  ro.max_open_files = 256;
  rocksdb::DB* raw = nullptr;
  auto s = rocksdb::DB::Open(ro, options.path, &raw);
  if (!s.ok()) return fromRocks(s, "open purge log " + options.path);
  log->db_.reset(raw);

  std::string head;
  s = log->db_->Get(rocksdb::ReadOptions(), kHeadKey, &head);
  if (s.ok()) {
    log->head_ = fromBe64(head);
  } else if (!s.IsNotFound()) {
    return fromRocks(s, "read log head");
  }
  std::unique_ptr<rocksdb::Iterator> it(log->db_->NewIterator(rocksdb::ReadOptions()));
  it->Seek(std::string(1, kPurgePrefix));
  if (it->Valid() && it->key().starts_with(std::string(1, kPurgePrefix))) {
    log->first_ = fromBe64(it->key().ToStringView().substr(1));
  } else {
    log->first_ = log->head_ + 1;
  }
  TERN_RETURN_IF_ERROR(fromRocks(it->status(), "scan purge log"));
  // Warm the in-memory tail.
  uint64_t from =
      log->head_ >= options.memory_entries ? log->head_ - options.memory_entries + 1 : 1;
  from = std::max(from, log->first_);
  std::vector<LogEntry> tail;
  for (it->Seek(purgeKey(from)); it->Valid() && it->key().starts_with(std::string(1, kPurgePrefix));
       it->Next()) {
    auto e = decodeLogEntry(it->value().ToStringView());
    if (!e.ok())
      return Status::corruption("purge log entry at " +
                                std::to_string(fromBe64(it->key().ToStringView().substr(1))) +
                                ": " + e.status().message());
    log->recent_.push_back(std::move(*e));
  }
  log->committer_ = std::thread([l = log.get()] {
    setThreadName("log-commit");
    l->commitLoop();
  });
  TERN_LOG(kInfo, "purge log open",
           {{"path", options.path},
            {"head_seq", std::to_string(log->head_)},
            {"first_seq", std::to_string(log->first_)}});
  return std::unique_ptr<PurgeLog>(std::move(log));
}

RocksPurgeLog::~RocksPurgeLog() {
  queue_.close();
  if (committer_.joinable()) committer_.join();
}

void RocksPurgeLog::append(LogEntry entry, AppendDone done) {
  queue_.push({std::move(entry), std::move(done)});
}

void RocksPurgeLog::raiseHead(uint64_t seq, AppendDone done) {
  LogEntry e;
  e.seq = seq;
  queue_.push({std::move(e), std::move(done), true});
}

void RocksPurgeLog::commitLoop() {
  std::vector<Pending> group;
  const auto fits = [this](size_t n, const Pending&) { return n < options_.max_group; };
  while (queue_.take(&group, std::chrono::hours(1), fits)) {
    if (group.empty()) continue;
    std::vector<Result<LogEntry>> results;
    Status s = commit(&group, &results);
    for (size_t i = 0; i < group.size(); ++i) {
      if (!s.isOk()) {
        group[i].done(s);
      } else {
        group[i].done(std::move(results[i]));
      }
    }
    group.clear();
  }
}

Status RocksPurgeLog::commit(std::vector<Pending>* group, std::vector<Result<LogEntry>>* results) {
  rocksdb::WriteBatch batch;
  uint64_t head;
  {
    std::lock_guard lock(mu_);
    head = head_;
  }
  const uint64_t head_before = head;
  bool raised = false;  // a gap in the sequence: the memory tail starts over
  const int64_t now_ms = wallNowMs();
  std::unordered_map<std::string, LogEntry> keys_in_group;
  std::vector<LogEntry> added;
  results->clear();
  for (auto& p : *group) {
    if (p.raise) {
      if (p.entry.seq > head) raised = true;
      head = std::max(head, p.entry.seq);
      p.entry.seq = head;
      results->emplace_back(p.entry);
      continue;
    }
    const std::string& key = p.entry.idempotency_key;
    if (!key.empty()) {
      if (auto it = keys_in_group.find(key); it != keys_in_group.end()) {
        results->emplace_back(it->second);
        continue;
      }
      std::string seq;
      auto s = db_->Get(rocksdb::ReadOptions(), std::string(1, kIdemPrefix) + key, &seq);
      if (s.ok()) {
        auto logged = get(fromBe64(seq));
        if (logged.ok() && logged->has_value()) {
          results->emplace_back(**logged);
          continue;
        }
      } else if (!s.IsNotFound()) {
        return fromRocks(s, "read idempotency key");
      }
    }
    p.entry.seq = ++head;
    if (p.entry.accepted_at_ms == 0) p.entry.accepted_at_ms = now_ms;
    batch.Put(purgeKey(head), encodeLogEntry(p.entry));
    if (!key.empty()) {
      batch.Put(std::string(1, kIdemPrefix) + key, be64(head));
      keys_in_group.emplace(key, p.entry);
    }
    added.push_back(p.entry);
    results->emplace_back(p.entry);
  }
  if (added.empty() && head == head_before) return Status::ok();
  batch.Put(kHeadKey, be64(head));
  rocksdb::WriteOptions wo;
  wo.sync = true;
  TERN_RETURN_IF_ERROR(fromRocks(db_->Write(wo, &batch), "append to purge log"));
  {
    std::lock_guard lock(mu_);
    head_ = head;
    ++syncs_;
    appended_ += added.size();
    if (raised) recent_.clear();
    for (auto& e : added) {
      // The memory tail holds consecutive sequences only.
      if (!recent_.empty() && recent_.back().seq + 1 != e.seq) recent_.clear();
      recent_.push_back(std::move(e));
    }
    while (recent_.size() > options_.memory_entries) recent_.pop_front();
  }
  Status t = trim(now_ms);
  if (!t.isOk()) TERN_LOG(kWarn, "purge log retention failed", {{"error", t.toString()}});
  return Status::ok();
}

Status RocksPurgeLog::trimForTesting(int64_t now_ms) { return trim(now_ms); }

Status RocksPurgeLog::trim(int64_t now_ms) {
  uint64_t first, head;
  {
    std::lock_guard lock(mu_);
    first = first_;
    head = head_;
  }
  if (head < first) return Status::ok();
  uint64_t new_first = first;
  if (head - first + 1 > options_.retain_count) new_first = head - options_.retain_count + 1;
  // Age: walk forward from the oldest while entries are too old (never the head).
  const int64_t cutoff = now_ms - options_.retain_age_ms;
  while (new_first < head) {
    auto e = get(new_first);
    if (!e.ok()) return e.status();
    if (!e->has_value() || (*e)->accepted_at_ms >= cutoff) break;
    ++new_first;
  }
  if (new_first == first) return Status::ok();
  rocksdb::WriteBatch batch;
  // Idempotency keys of the dropped entries go with them.
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  const std::string end = purgeKey(new_first);
  for (it->Seek(purgeKey(first)); it->Valid() && it->key().ToStringView() < end; it->Next()) {
    auto e = decodeLogEntry(it->value().ToStringView());
    if (e.ok() && !e->idempotency_key.empty())
      batch.Delete(std::string(1, kIdemPrefix) + e->idempotency_key);
  }
  TERN_RETURN_IF_ERROR(fromRocks(it->status(), "scan purge log"));
  batch.DeleteRange(purgeKey(first), end);
  TERN_RETURN_IF_ERROR(fromRocks(db_->Write(rocksdb::WriteOptions(), &batch), "trim purge log"));
  std::lock_guard lock(mu_);
  first_ = new_first;
  while (!recent_.empty() && recent_.front().seq < new_first) recent_.pop_front();
  return Status::ok();
}

uint64_t RocksPurgeLog::headSeq() const {
  std::lock_guard lock(mu_);
  return head_;
}

uint64_t RocksPurgeLog::firstSeq() const {
  std::lock_guard lock(mu_);
  return first_;
}

PurgeLogStats RocksPurgeLog::stats() const {
  std::lock_guard lock(mu_);
  PurgeLogStats s;
  s.head_seq = head_;
  s.first_seq = head_ >= first_ ? first_ : 0;
  s.entries = head_ >= first_ ? head_ - first_ + 1 : 0;
  s.syncs = syncs_;
  s.appended = appended_;
  return s;
}

Status RocksPurgeLog::read(uint64_t from, size_t max, std::vector<LogEntry>* out) const {
  uint64_t head;
  {
    std::lock_guard lock(mu_);
    from = std::max(from, first_);
    head = head_;
    if (!recent_.empty() && from >= recent_.front().seq) {
      for (size_t i = from - recent_.front().seq; i < recent_.size() && max > 0; ++i, --max)
        out->push_back(recent_[i]);
      return Status::ok();
    }
  }
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(purgeKey(from));
       max > 0 && it->Valid() && it->key().starts_with(std::string(1, kPurgePrefix)); it->Next()) {
    auto e = decodeLogEntry(it->value().ToStringView());
    if (!e.ok()) return e.status();
    if (e->seq > head) break;
    out->push_back(std::move(*e));
    --max;
  }
  return fromRocks(it->status(), "read purge log");
}

Result<std::optional<LogEntry>> RocksPurgeLog::get(uint64_t seq) const {
  {
    std::lock_guard lock(mu_);
    if (seq < first_ || seq > head_) return std::optional<LogEntry>();
    if (!recent_.empty() && seq >= recent_.front().seq)
      return std::optional<LogEntry>(recent_[seq - recent_.front().seq]);
  }
  return getFromDisk(seq);
}

Result<std::optional<LogEntry>> RocksPurgeLog::getFromDisk(uint64_t seq) const {
  std::string value;
  auto s = db_->Get(rocksdb::ReadOptions(), purgeKey(seq), &value);
  if (s.IsNotFound()) return std::optional<LogEntry>();
  TERN_RETURN_IF_ERROR(fromRocks(s, "read purge log"));
  TERN_ASSIGN_OR_RETURN(LogEntry e, decodeLogEntry(value));
  return std::optional<LogEntry>(std::move(e));
}

Status RocksPurgeLog::saveEdge(const EdgeRecord& edge) {
  return fromRocks(db_->Put(rocksdb::WriteOptions(), std::string(1, kEdgePrefix) + edge.edge_id,
                            encodeEdgeRecord(edge)),
                   "save edge");
}

Status RocksPurgeLog::removeEdge(const std::string& edge_id) {
  return fromRocks(db_->Delete(rocksdb::WriteOptions(), std::string(1, kEdgePrefix) + edge_id),
                   "remove edge");
}

Result<std::vector<EdgeRecord>> RocksPurgeLog::loadEdges() const {
  std::vector<EdgeRecord> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  const std::string prefix(1, kEdgePrefix);
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    if (auto r = decodeEdgeRecord(it->value().ToStringView()); r.ok()) out.push_back(std::move(*r));
  }
  TERN_RETURN_IF_ERROR(fromRocks(it->status(), "load edges"));
  return out;
}

}  // namespace tern::coordinator
