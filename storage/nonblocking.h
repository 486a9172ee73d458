#pragma once
// NonBlockingReads: a scope, on one thread, in which a store's reads must
// not block on I/O. A store that can tell (RocksStore reads its files with
// preadv2(RWF_NOWAIT)) refuses a read whose data is not in memory and
// records the refusal here; the caller then does the same work where
// blocking is allowed (the blocking pool). An event loop uses it to serve
// disk-tier objects that sit in the page cache without a thread hand-off.
// Scopes do not nest.

#include <cstddef>
#include <cstdint>
#include <optional>

namespace tern::storage {

class NonBlockingReads {
 public:
  NonBlockingReads();
  ~NonBlockingReads();
  NonBlockingReads(const NonBlockingReads&) = delete;
  NonBlockingReads& operator=(const NonBlockingReads&) = delete;

  // True when a read in this scope was refused: whatever the calls in it
  // returned is not an answer and must be redone where blocking is allowed.
  bool refused() const;

  // For stores: whether the calling thread is in a scope, and recording a
  // refused read.
  static bool active();
  static void refuse();
};

// Reads n bytes at `offset` of `fd` from the page cache only
// (preadv2 RWF_NOWAIT): the bytes read, fewer than n only where the file
// ends; nullopt, recorded as a refusal, when some are not resident (or the
// kernel cannot tell: then every later call refuses at once).
std::optional<size_t> readResident(int fd, uint64_t offset, char* out, size_t n);

}  // namespace tern::storage
