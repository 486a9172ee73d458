#include "storage/rocksdb/body_files.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>

#include "common/clock.h"
#include "common/log.h"
#include "storage/format/format.h"
#include "storage/nonblocking.h"

namespace tern::storage {
namespace {

namespace fs = std::filesystem;

// The id of a segment file's name: exactly 16 lowercase hex digits.
std::optional<uint64_t> segmentIdOf(std::string_view name) {
  if (name.size() != 16) return std::nullopt;
  uint64_t id = 0;
  for (char c : name) {
    int digit;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      digit = c - 'a' + 10;
    } else {
      return std::nullopt;
    }
    id = (id << 4) | static_cast<uint64_t>(digit);
  }
  return id;
}

uint64_t alignUp(uint64_t v) {
  const uint64_t a = format::kBodyAlignment;
  return (v + a - 1) / a * a;
}

Status errnoStatus(const char* what, int err) {
  std::string msg = std::string(what) + ": " + std::strerror(err);
  if (err == ENOSPC || err == EDQUOT) return Status::resourceExhausted("disk full: " + msg);
  return Status::ioError(msg);
}

// Gives [offset, offset + length) back to the file system. Failing is
// harmless (the bytes stay allocated, unread): it is logged.
void punch(int fd, uint64_t id, uint64_t offset, uint64_t length) {
  if (length == 0) return;
  if (::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                  static_cast<off_t>(length)) != 0) {
    TERN_LOG(kWarn, "cannot free a removed body's space",
             {{"segment", std::to_string(id)}, {"reason", std::strerror(errno)}});
  }
}

// cachestat(2) (Linux 6.5): how many pages of a range are cached, with no
// mapping. Declared here: Debian 12's headers predate it.
struct CacheStatRange {
  uint64_t off, len;
};
struct CacheStat {
  uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
};
constexpr long kSysCachestat = 451;  // the same number on every architecture
std::atomic<bool> g_no_cachestat{false};
std::atomic<bool> g_force_mincore{false};

// Mappings for mincore share vm.max_map_count with everything else (the
// memory tier's files, thread stacks, malloc): at most an eighth of it.
std::atomic<int64_t> g_mappings{0};
int64_t mappingBudget() {
  static const int64_t budget = [] {
    int64_t n = 65530;
    if (FILE* f = std::fopen("/proc/sys/vm/max_map_count", "r")) {
      if (std::fscanf(f, "%" SCNd64, &n) != 1) n = 65530;
      std::fclose(f);
    }
    return std::max<int64_t>(n / 8, 1);
  }();
  return budget;
}

}  // namespace

BodySegment::BodySegment(uint64_t id, int fd, uint64_t max_start, int64_t sent_grace_us)
    : id_(id),
      fd_(fd),
      blocks_((max_start + format::kBodyAlignment - 1) / format::kBodyAlignment),
      checked_((blocks_ + 63) / 64),
      released_((blocks_ + 63) / 64),
      sent_grace_us_(sent_grace_us) {}

BodySegment::~BodySegment() {
  if (map_ != nullptr) {
    ::munmap(map_, map_bytes_);
    g_mappings.fetch_sub(1);
  }
  // (Punches still waiting are moot once the segment is gone from the
  // table; at the next open, bytes no record holds are freed anyway.)
  if (fd_ >= 0) ::close(fd_);
}

void BodySegment::useMincoreForTesting(bool on) { g_force_mincore = on; }

bool BodySegment::markable(uint64_t offset) const {
  return offset % format::kBodyAlignment == 0 && offset / format::kBodyAlignment < blocks_;
}

void BodySegment::markChecked(uint64_t offset) {
  if (!markable(offset)) return;
  const uint64_t block = offset / format::kBodyAlignment;
  std::lock_guard lock(pin_mu_);
  checked_[block / 64] |= uint64_t{1} << (block % 64);
}

bool BodySegment::pin(uint64_t offset) {
  if (!markable(offset)) return false;
  const uint64_t block = offset / format::kBodyAlignment;
  std::lock_guard lock(pin_mu_);
  if (!testBit(checked_, block) || testBit(released_, block)) return false;
  ++pins_[offset];
  return true;
}

bool BodySegment::punchOrQueueLocked(uint64_t offset, uint64_t length, int64_t now_us) {
  if (sent_grace_us_ > 0 && last_unpin_us_ > 0 && now_us < last_unpin_us_ + sent_grace_us_) {
    late_.push_back({offset, length, last_unpin_us_ + sent_grace_us_});
    return false;
  }
  return true;
}

void BodySegment::unpin(uint64_t offset, uint64_t length) {
  const uint64_t block = offset / format::kBodyAlignment;
  const int64_t now_us = steadyNowUs();
  {
    std::lock_guard lock(pin_mu_);
    auto it = pins_.find(offset);
    if (it == pins_.end()) return;
    last_unpin_us_ = now_us;
    if (--it->second > 0) return;
    pins_.erase(it);
    // Removed while it was out: punched now, or after the grace.
    if (!testBit(released_, block) || !punchOrQueueLocked(offset, length, now_us)) return;
  }
  punch(fd_, id_, offset, alignUp(offset + length) - offset);
}

void BodySegment::releaseBody(uint64_t offset, uint64_t length) {
  if (markable(offset)) {
    const uint64_t block = offset / format::kBodyAlignment;
    std::lock_guard lock(pin_mu_);
    released_[block / 64] |= uint64_t{1} << (block % 64);
    if (pins_.contains(offset)) return;  // its last unpin punches it
    if (!punchOrQueueLocked(offset, length, steadyNowUs())) return;
  }
  punch(fd_, id_, offset, alignUp(offset + length) - offset);
}

void BodySegment::punchDue(int64_t now_us) {
  std::vector<Late> due;
  {
    std::lock_guard lock(pin_mu_);
    std::erase_if(late_, [&](const Late& l) {
      if (l.due_us > now_us) return false;
      due.push_back(l);
      return true;
    });
  }
  for (const auto& l : due) punch(fd_, id_, l.offset, alignUp(l.offset + l.length) - l.offset);
}

bool BodySegment::resident(uint64_t offset, uint64_t length) {
  if (length == 0) return true;
  static const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  if (!g_no_cachestat.load(std::memory_order_relaxed) &&
      !g_force_mincore.load(std::memory_order_relaxed)) {
    CacheStatRange range{offset, length};
    CacheStat stat{};
    if (::syscall(kSysCachestat, fd_, &range, &stat, 0) == 0) {
      const uint64_t pages = (offset + length - 1) / page - offset / page + 1;
      return stat.nr_cache >= pages;
    }
    if (errno != ENOSYS) return false;
    g_no_cachestat = true;  // an older kernel: mincore from now on
  }
  return mincoreResident(offset, length);
}

bool BodySegment::mincoreResident(uint64_t offset, uint64_t length) {
  static const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const uint64_t first = offset / page * page;
  const uint64_t end = offset + length;
  std::shared_lock read(map_mu_);
  if (end > map_bytes_) {
    read.unlock();
    {
      std::unique_lock write(map_mu_);
      if (end > map_bytes_) {
        if (map_failed_) return false;
        // In steps of 64 MiB: a segment is mapped a few times at most.
        const uint64_t step = uint64_t{64} << 20;
        const uint64_t want = (end + step - 1) / step * step;
        if (map_ == nullptr && g_mappings.fetch_add(1) >= mappingBudget()) {
          g_mappings.fetch_sub(1);
          return false;  // over budget: read, not sent (asked again later)
        }
        void* m = ::mmap(nullptr, want, PROT_READ, MAP_SHARED | MAP_NORESERVE, fd_, 0);
        if (m == MAP_FAILED) {
          if (map_ == nullptr) g_mappings.fetch_sub(1);
          map_failed_ = true;
          return false;
        }
        if (map_ != nullptr) ::munmap(map_, map_bytes_);
        map_ = m;
        map_bytes_ = want;
      }
    }
    read.lock();
    if (end > map_bytes_) return false;
  }
  unsigned char vec[256];
  for (uint64_t at = first; at < end;) {
    const uint64_t pages = std::min<uint64_t>((end - at + page - 1) / page, sizeof vec);
    if (::mincore(static_cast<char*>(map_) + at, pages * page, vec) != 0) return false;
    for (uint64_t i = 0; i < pages; ++i) {
      if ((vec[i] & 1) == 0) return false;
    }
    at += pages * page;
  }
  return true;
}

Status BodySegment::read(uint64_t offset, char* out, size_t n) const {
  if (NonBlockingReads::active()) {
    auto done = readResident(fd_, offset, out, n);
    if (!done) return Status::unavailable("not in the page cache");
    if (*done < n) return Status::corruption("body file ends before the body");
    return Status::ok();
  }
  size_t done = 0;
  while (done < n) {
    const ssize_t r = ::pread(fd_, out + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return errnoStatus("body file read", errno);
    }
    if (r == 0) return Status::corruption("body file ends before the body");
    done += static_cast<size_t>(r);
  }
  return Status::ok();
}

Result<std::unique_ptr<BodyFiles>> BodyFiles::open(const std::string& dir, uint64_t segment_bytes,
                                                   int64_t sent_grace_us) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::ioError("cannot create " + dir + ": " + ec.message());
  std::unique_ptr<BodyFiles> files(new BodyFiles(dir, std::max<uint64_t>(segment_bytes, 1),
                                                 std::max<int64_t>(sent_grace_us, 0)));
  fs::directory_iterator it(dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    auto id = segmentIdOf(name);
    if (!id) continue;                                        // not ours
    int fd = ::open(it->path().c_str(), O_RDWR | O_CLOEXEC);  // written no more; punched
    if (fd < 0) return errnoStatus(("cannot open " + it->path().string()).c_str(), errno);
    State st;
    st.segment =
        std::make_shared<BodySegment>(*id, fd, files->segment_bytes_, files->sent_grace_us_);
    st.found_at_open = true;
    files->segments_.emplace(*id, std::move(st));
  }
  if (ec) return Status::ioError("cannot list " + dir + ": " + ec.message());
  return files;
}

std::string BodyFiles::pathOf(uint64_t id) const {
  char name[17];
  std::snprintf(name, sizeof(name), "%016" PRIx64, id);
  return dir_ + "/" + name;
}

Result<BodyFiles::Lease> BodyFiles::lease(uint64_t new_id) {
  {
    std::lock_guard lock(mu_);
    while (!free_.empty()) {
      const uint64_t id = free_.back();
      free_.pop_back();
      auto it = segments_.find(id);
      if (it == segments_.end()) continue;
      it->second.leased = true;
      return Lease{it->second.segment, it->second.end};
    }
  }
  const std::string path = pathOf(new_id);
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return errnoStatus(("cannot create " + path).c_str(), errno);
  State st;
  st.segment = std::make_shared<BodySegment>(new_id, fd, segment_bytes_, sent_grace_us_);
  st.leased = true;
  Lease out{st.segment, 0};
  std::lock_guard lock(mu_);
  segments_.emplace(new_id, std::move(st));
  return out;
}

Status BodyFiles::write(const Lease& lease, uint64_t at, std::string_view data) {
  const int fd = lease.segment->fd_;
  while (!data.empty()) {
    ssize_t r = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(at));
    if (r < 0) {
      if (errno == EINTR) continue;
      return errnoStatus("body file write", errno);
    }
    data.remove_prefix(static_cast<size_t>(r));
    at += static_cast<uint64_t>(r);
  }
  return Status::ok();
}

void BodyFiles::finish(const Lease& lease, uint64_t used, bool keep) {
  const uint64_t id = lease.segment->id();
  // The next body starts past these bytes even when they are dropped:
  // offsets are never written twice.
  if (!keep) {
    punch(lease.segment->fd_, id, lease.offset, alignUp(lease.offset + used) - lease.offset);
  } else if (used > 0) {
    lease.segment->markChecked(lease.offset);  // its bytes are the writer's own
  }
  std::string dropped;
  {
    std::lock_guard lock(mu_);
    auto it = segments_.find(id);
    if (it == segments_.end()) return;
    State& st = it->second;
    st.leased = false;
    if (keep) st.live += static_cast<int64_t>(used);
    st.end = alignUp(lease.offset + used);
    if (st.end < segment_bytes_) {
      free_.push_back(id);
    } else {
      dropped = dropIfDeadLocked(id);  // full: appended to no more
    }
  }
  unlinkDropped({dropped});
}

std::shared_ptr<BodySegment> BodyFiles::find(uint64_t id) const {
  std::lock_guard lock(mu_);
  auto it = segments_.find(id);
  return it == segments_.end() ? nullptr : it->second.segment;
}

bool BodyFiles::foundAtOpen(uint64_t id) const {
  std::lock_guard lock(mu_);
  auto it = segments_.find(id);
  return it != segments_.end() && it->second.found_at_open;
}

void BodyFiles::release(const Extent& extent) {
  if (extent.length == 0) return;  // an empty body has no place in a segment
  std::shared_ptr<BodySegment> segment;
  std::string dropped;
  {
    std::lock_guard lock(mu_);
    auto it = segments_.find(extent.segment);
    if (it == segments_.end()) return;
    State& st = it->second;
    segment = st.segment;
    if (st.found_at_open && !reclaimed_) {
      released_early_.emplace(extent.segment, extent.offset);
    } else {
      st.live -= static_cast<int64_t>(extent.length);
      dropped = dropIfDeadLocked(extent.segment);
    }
  }
  // Outside the lock that lookups take; on an unlinked file it is moot. To
  // the block boundary: the next body starts there. Not under a send.
  segment->releaseBody(extent.offset, extent.length);
  unlinkDropped({dropped});
}

std::string BodyFiles::dropIfDeadLocked(uint64_t id) {
  auto it = segments_.find(id);
  if (it == segments_.end()) return {};
  const State& st = it->second;
  if (st.leased) return {};
  if (st.found_at_open ? !reclaimed_ : st.end < segment_bytes_) return {};  // may still be written
  if (st.live < 0) {
    // Accounting gone wrong: keep the file (the next open reclaims it).
    TERN_LOG(kError, "body file accounting below zero; segment kept",
             {{"segment", std::to_string(id)}, {"live", std::to_string(st.live)}});
    return {};
  }
  if (st.live > 0) return {};
  segments_.erase(it);  // readers still holding it finish on the open descriptor
  return pathOf(id);
}

void BodyFiles::unlinkDropped(const std::vector<std::string>& paths) {
  for (const auto& path : paths) {
    if (path.empty()) continue;
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      TERN_LOG(kWarn, "cannot remove an empty body file",
               {{"path", path}, {"reason", std::strerror(errno)}});
    }
  }
}

void BodyFiles::reclaim(const std::vector<Extent>& live) {
  std::unordered_map<uint64_t, std::vector<Extent>> by_segment;
  for (const auto& e : live) {
    if (e.length > 0) by_segment[e.segment].push_back(e);
  }
  // What to punch, worked out under the lock and done outside it: the
  // segments found at open are written by nobody.
  struct Hole {
    std::shared_ptr<BodySegment> segment;
    uint64_t offset, length;
  };
  std::vector<Hole> holes;
  std::vector<std::string> dropped;
  uint64_t removed = 0;
  {
    std::lock_guard lock(mu_);
    std::vector<uint64_t> ids;
    for (auto& [id, st] : segments_) {
      if (st.found_at_open) ids.push_back(id);
    }
    for (uint64_t id : ids) {
      State& st = segments_.at(id);
      auto& extents = by_segment[id];
      std::sort(extents.begin(), extents.end(),
                [](const Extent& a, const Extent& b) { return a.offset < b.offset; });
      uint64_t at = 0;
      int64_t bytes = 0;
      std::vector<Hole> mine;
      for (const auto& e : extents) {
        if (e.offset > at) mine.push_back({st.segment, at, e.offset - at});
        at = std::max(at, alignUp(e.offset + e.length));
        // Released since open: not live, and not a hole of ours either:
        // its release punched it, or left that to its readers (a reader
        // may be sending it now).
        if (!released_early_.contains({id, e.offset})) bytes += static_cast<int64_t>(e.length);
      }
      mine.push_back({st.segment, at, 0});  // to the end of the file
      st.live = bytes;
      if (bytes == 0) {
        ++removed;  // unlinked below: nothing to punch
      } else {
        holes.insert(holes.end(), mine.begin(), mine.end());
      }
    }
    reclaimed_ = true;
    released_early_.clear();
    for (uint64_t id : ids) dropped.push_back(dropIfDeadLocked(id));
  }
  unlinkDropped(dropped);
  uint64_t punched = 0;
  for (auto& hole : holes) {
    if (hole.length == 0) {
      struct stat sb;
      if (::fstat(hole.segment->fd_, &sb) != 0 || static_cast<uint64_t>(sb.st_size) <= hole.offset)
        continue;
      hole.length = static_cast<uint64_t>(sb.st_size) - hole.offset;
    }
    punch(hole.segment->fd_, hole.segment->id(), hole.offset, hole.length);
    punched += hole.length;
  }
  if (punched > 0 || removed > 0) {
    TERN_LOG(kInfo, "freed body file space not held by any stored object",
             {{"bytes", std::to_string(punched)}, {"files_removed", std::to_string(removed)}});
  }
}

void BodyFiles::punchDue() {
  if (sent_grace_us_ == 0) return;
  std::vector<std::shared_ptr<BodySegment>> all;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, st] : segments_) all.push_back(st.segment);
  }
  const int64_t now_us = steadyNowUs();
  for (const auto& segment : all) segment->punchDue(now_us);
}

BodyFiles::Stats BodyFiles::stats() const {
  std::vector<std::shared_ptr<BodySegment>> all;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, st] : segments_) all.push_back(st.segment);
  }
  Stats out;
  out.segments = all.size();
  for (const auto& segment : all) {
    struct stat sb;
    if (::fstat(segment->fd_, &sb) == 0)
      out.disk_bytes += static_cast<uint64_t>(sb.st_blocks) * 512;
  }
  return out;
}

}  // namespace tern::storage
