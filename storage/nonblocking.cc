#include "storage/nonblocking.h"

#include <sys/stat.h>
#include <sys/uio.h>

#include <atomic>
#include <cerrno>

namespace tern::storage {
namespace {

std::atomic<bool> g_nowait_unsupported{false};  // RWF_NOWAIT refused by the kernel

struct ThreadState {
  bool active = false;
  bool refused = false;
};
thread_local ThreadState t_state;

}  // namespace

NonBlockingReads::NonBlockingReads() { t_state = {true, false}; }
NonBlockingReads::~NonBlockingReads() { t_state = {}; }
bool NonBlockingReads::refused() const { return t_state.refused; }
bool NonBlockingReads::active() { return t_state.active; }
void NonBlockingReads::refuse() {
  if (t_state.active) t_state.refused = true;
}

std::optional<size_t> readResident(int fd, uint64_t offset, char* out, size_t n) {
  if (fd < 0 || g_nowait_unsupported.load(std::memory_order_relaxed)) {
    NonBlockingReads::refuse();
    return std::nullopt;
  }
  size_t done = 0;
  while (done < n) {
    iovec iov{out + done, n - done};
    const ssize_t r = ::preadv2(fd, &iov, 1, static_cast<off_t>(offset + done), RWF_NOWAIT);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EOPNOTSUPP || errno == EINVAL) g_nowait_unsupported = true;
      NonBlockingReads::refuse();  // EAGAIN: not resident
      return std::nullopt;
    }
    if (r == 0) break;  // end of file
    done += static_cast<size_t>(r);
    if (done < n) {
      // A short read: the rest is not resident, or the file ends here.
      struct stat st;
      if (::fstat(fd, &st) == 0 && offset + done >= static_cast<uint64_t>(st.st_size)) break;
      NonBlockingReads::refuse();
      return std::nullopt;
    }
  }
  return done;
}

}  // namespace tern::storage
