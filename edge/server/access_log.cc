#include "edge/server/access_log.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

#include "common/clock.h"
#include "common/log.h"
#include "common/thread_name.h"

namespace tern::edge::server {
namespace json = boost::json;

namespace {

std::string isoTimeMs(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms % 1000));
  return buf;
}

// xorshift64*, one per thread: sampling without a lock or a shared counter.
double uniform01() {
  thread_local uint64_t state = 0x9e3779b97f4a7c15ULL ^ static_cast<uint64_t>(steadyNowUs()) ^
                                (reinterpret_cast<uintptr_t>(&state) << 16);
  state ^= state >> 12;
  state ^= state << 25;
  state ^= state >> 27;
  return static_cast<double>((state * 0x2545F4914F6CDD1DULL) >> 11) * 0x1.0p-53;
}

// The length of the well-formed UTF-8 sequence at s[i], or 0 if there is
// none (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF).
size_t utf8Sequence(std::string_view s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  const size_t n = c < 0x80           ? 1
                   : (c >> 5) == 0x6  ? 2
                   : (c >> 4) == 0xE  ? 3
                   : (c >> 3) == 0x1E ? 4
                                      : 0;
  if (n == 0 || i + n > s.size() || (n == 2 && c < 0xC2) || c > 0xF4) return 0;
  for (size_t k = 1; k < n; ++k)
    if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return 0;
  const auto c1 = n > 1 ? static_cast<unsigned char>(s[i + 1]) : 0;
  if (n == 3 && ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 >= 0xA0))) return 0;
  if (n == 4 && ((c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 >= 0x90))) return 0;
  return n;
}

bool isValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8Sequence(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

// `s` with each byte outside a well-formed sequence replaced by U+FFFD:
// request targets and Host may carry any byte, the log must stay JSON that
// strict parsers read.
std::string validUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8Sequence(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

}  // namespace

AccessLog::AccessLog(AccessLogOptions options, metrics::Registry* registry)
    : options_(std::move(options)),
      sample_(options_.sample),
      written_(&registry->counter("tern_edge_access_log_lines_total", "Access log lines",
                                  "result=\"written\"")),
      dropped_(&registry->counter("tern_edge_access_log_lines_total", "Access log lines",
                                  "result=\"dropped\"")) {}

Result<std::unique_ptr<AccessLog>> AccessLog::open(AccessLogOptions options,
                                                   metrics::Registry* registry) {
  if (!(options.sample >= 0 && options.sample <= 1))
    return Status::invalidArgument("log.access_sample: a share from 0 to 1");
  std::unique_ptr<AccessLog> log(new AccessLog(std::move(options), registry));
  TERN_RETURN_IF_ERROR(log->openFile());
  log->writer_ = std::thread([l = log.get()] {
    setThreadName("access-log");
    l->writerLoop();
  });
  return log;
}

AccessLog::~AccessLog() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  std::lock_guard lock(file_mu_);
  if (fd_ > STDERR_FILENO) ::close(fd_);
}

Status AccessLog::openFile() {
  int fd = STDERR_FILENO;
  if (!options_.path.empty()) {
    fd = ::open(options_.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
      return Status::ioError("log.access_file " + options_.path + ": " + std::strerror(errno));
  }
  std::lock_guard lock(file_mu_);
  if (fd_ > STDERR_FILENO) ::close(fd_);
  fd_ = fd;
  return Status::ok();
}

Status AccessLog::reopen() { return options_.path.empty() ? Status::ok() : openFile(); }

bool AccessLog::sampled() const {
  const double s = sample_.load(std::memory_order_relaxed);
  return s >= 1 || (s > 0 && uniform01() < s);
}

void AccessLog::record(const AccessRecord& r) {
  // Built in a buffer on the stack: no heap allocation but the line's own.
  unsigned char scratch[2048];
  json::monotonic_resource mr(scratch, sizeof scratch);
  json::object o(&mr);
  o.reserve(10);
  o.emplace("ts", isoTimeMs(wallNowMs()));
  auto text = [&](std::string_view v) -> json::string {
    // (Almost always valid already: no copy then.)
    if (isValidUtf8(v)) return json::string(v, &mr);
    return json::string(validUtf8(v), &mr);
  };
  o.emplace("client", r.client);
  o.emplace("method", text(r.method));
  o.emplace("host", text(r.host));
  o.emplace("target", text(r.target));
  o.emplace("protocol", r.protocol);
  o.emplace("status", r.status);
  o.emplace("bytes", r.bytes);
  o.emplace("duration_us", r.duration_us);
  o.emplace("cache", text(r.cache));
  std::string line = json::serialize(o);
  line += '\n';
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    if (queued_.size() + line.size() > options_.max_queued_bytes) {
      dropped_->inc();
      return;
    }
    // The writer wakes on its interval, or once a batch is worth a write:
    // small writes spread out instead of one large one on a busy core.
    const size_t before = queued_.size();
    queued_ += line;
    wake = before < kBatchBytes && queued_.size() >= kBatchBytes;
  }
  if (wake) cv_.notify_one();
  written_->inc();
}

void AccessLog::writerLoop() {
  std::string batch;
  for (;;) {
    bool stop;
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(options_.flush_interval_ms),
                   [&] { return stopping_ || queued_.size() >= kBatchBytes; });
      batch.swap(queued_);
      stop = stopping_;
    }
    if (!batch.empty()) {
      std::lock_guard lock(file_mu_);
      // Into a pipe (standard error under a container runtime) the other
      // log lines may be written too: whole lines, at most PIPE_BUF bytes
      // per write, so that no line is split by another.
      struct stat st {};
      const bool pipe = ::fstat(fd_, &st) == 0 &&
                        (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || S_ISCHR(st.st_mode));
      size_t done = 0;
      while (done < batch.size()) {
        size_t len = batch.size() - done;
        if (pipe && len > PIPE_BUF) {
          // Whole lines up to PIPE_BUF; a longer line goes whole on its own.
          const size_t cut = batch.rfind('\n', done + PIPE_BUF - 1);
          len = cut != std::string::npos && cut >= done ? cut + 1 - done
                                                        : batch.find('\n', done) + 1 - done;
        }
        ssize_t n = ::write(fd_, batch.data() + done, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          TERN_LOG(kError, "access log write failed",
                   {{"error", n < 0 ? std::strerror(errno) : "nothing written"}});
          break;
        }
        done += static_cast<size_t>(n);
      }
      batch.clear();
    }
    if (stop) return;
  }
}

}  // namespace tern::edge::server
