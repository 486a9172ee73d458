#pragma once
// BodyFiles: the bodies of disk-tier objects, in append-only segment files
// beside the RocksDB store (<store>/bodies/<segment id as 16 hex digits>).
//
// A body is written once, contiguous, from a 4 KiB-aligned offset of a
// segment leased to its writer alone; its place (segment, offset) and its
// chunk checksums go into the object's metadata record, which is committed
// in RocksDB after the bytes are written. So a body costs one pwrite per
// chunk and no write-ahead log, memtable or compaction, and a hit reads it
// with one pread (preadv2 with RWF_NOWAIT inside a NonBlockingReads scope)
// on a descriptor kept open.
//
// Space: a removed body's blocks are given back at once (fallocate
// PUNCH_HOLE, to the 4 KiB boundary where the next body starts); a segment
// with nothing live left is unlinked. Offsets are never reused: a segment
// is appended to by one writer at a time, never below its end (an
// abandoned body is punched out, not written over), segments found at open
// are never appended to again, and a segment's id is an object id of the
// store (never reused). So a reader racing a removal reads the object's
// bytes or zeros (the hole), never another object's; its checksum tells.
// An empty body takes no place in a segment (its record names none).
//
// Sending from the file: a body that this process wrote, or read whole and
// found good, is marked checked; while its bytes are in the page cache
// (cachestat(2), or mincore(2) on a read-only mapping of the segment where
// the kernel lacks it) it can go to a socket with sendfile(2), with no copy
// through user space and no checksum pass. The checksums guard against
// bytes lost or torn by a crash of the machine, and every such crash
// restarts the process, whose marks start empty. A reader pins the body
// first; a removal marks the body released and, while the body has pins,
// leaves its punch to the last reader to unpin. The socket may still hold
// references to the pages after sendfile returned (until the peer acks
// them), and punching part of a large folio zeroes it in place: so a punch
// in a segment that had a body out within the last `sent_grace_us` waits
// that long (punchDue()), and a body is never zeroed under a send.
//
// Crash: bytes written for an object whose record never committed are left
// behind. Once the store has listed the live bodies (the index load),
// reclaim() punches everything else in the segments found at open.
//
// Thread-safety: all methods are thread-safe; a Lease is used by one writer.

#include <boost/unordered/unordered_flat_map.hpp>

#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/result.h"
#include "common/status.h"

namespace tern::storage {

// One open segment file. Its descriptor closes when the last holder (the
// store's table, a reader) lets go, so a reader can finish on an unlinked
// segment.
class BodySegment {
 public:
  // `max_start`: bodies start below it (the segment size it was made with);
  // only those can be checked, pinned and sent from the file.
  // `sent_grace_us`: see above (0: punch as soon as nobody holds the body).
  BodySegment(uint64_t id, int fd, uint64_t max_start, int64_t sent_grace_us = 0);
  ~BodySegment();
  BodySegment(const BodySegment&) = delete;
  BodySegment& operator=(const BodySegment&) = delete;

  uint64_t id() const { return id_; }
  int fd() const { return fd_; }
  // Reads exactly n bytes at offset. Inside a NonBlockingReads scope, bytes
  // not in the page cache are refused: Unavailable, and the scope records
  // it. Past the end of the file: Corruption.
  Status read(uint64_t offset, char* out, size_t n) const;

  // The body at `offset` was written by this process, or read whole and
  // found good.
  void markChecked(uint64_t offset);
  // Pins the body at `offset` when it is checked and not released: until
  // its last unpin(), a removal leaves its bytes in place. False (and
  // nothing pinned) otherwise.
  bool pin(uint64_t offset);
  // `length`: the body's; a body removed while pinned is punched here.
  void unpin(uint64_t offset, uint64_t length);
  // True when every byte of [offset, offset + length) is in the page cache
  // (never blocks). False when unknown.
  bool resident(uint64_t offset, uint64_t length);
  // Punches whose grace ended by `now_us` (steady clock).
  void punchDue(int64_t now_us);
  // Tests: ask with mincore even where cachestat works.
  static void useMincoreForTesting(bool on);

 private:
  friend class BodyFiles;
  // Marks the body released and punches it (to the block where the next
  // one starts) now, or leaves that to its last pin.
  void releaseBody(uint64_t offset, uint64_t length);
  bool markable(uint64_t offset) const;
  // Punches now, or queues it while a send may still hold the pages.
  // REQUIRES: pin_mu_ held; returns true when the caller must punch now.
  bool punchOrQueueLocked(uint64_t offset, uint64_t length, int64_t now_us);
  bool mincoreResident(uint64_t offset, uint64_t length);
  static bool testBit(const std::vector<uint64_t>& bits, uint64_t block) {
    return (bits[block / 64] >> (block % 64)) & 1;
  }

  uint64_t id_;
  int fd_;
  size_t blocks_;  // bodies that can be marked: offsets / kBodyAlignment below this
  std::mutex pin_mu_;
  std::vector<uint64_t> checked_;   // a bit per block  GUARDED_BY(pin_mu_)
  std::vector<uint64_t> released_;  // a bit per block, never cleared  GUARDED_BY(pin_mu_)
  // Pins of each body being sent, by offset (few at a time). GUARDED_BY(pin_mu_)
  boost::unordered_flat_map<uint64_t, uint32_t> pins_;
  const int64_t sent_grace_us_;
  int64_t last_unpin_us_ = 0;  // GUARDED_BY(pin_mu_)
  struct Late {
    uint64_t offset, length;
    int64_t due_us;
  };
  std::vector<Late> late_;  // punches waiting out the grace  GUARDED_BY(pin_mu_)
  // A read-only shared mapping, asked only by mincore (never touched):
  // grown (remapped) as bodies further in are asked about.
  std::shared_mutex map_mu_;
  void* map_ = nullptr;
  uint64_t map_bytes_ = 0;
  bool map_failed_ = false;  // GUARDED_BY(map_mu_): not retried
};

class BodyFiles {
 public:
  struct Extent {
    uint64_t segment = 0;
    uint64_t offset = 0;
    uint64_t length = 0;
  };
  // A place to append one body: from `offset` of `segment`, until finish().
  struct Lease {
    std::shared_ptr<BodySegment> segment;
    uint64_t offset = 0;
  };
  struct Stats {
    uint64_t segments = 0;
    uint64_t disk_bytes = 0;  // allocated on disk (holes not counted)
  };

  // Opens (creating) the folder and every segment in it. Segments found
  // here are read-only from now on.
  // `sent_grace_us`: how long a punch waits after a body of its segment was
  // last out for sending (see above).
  static Result<std::unique_ptr<BodyFiles>> open(const std::string& dir, uint64_t segment_bytes,
                                                 int64_t sent_grace_us = 0);
  ~BodyFiles() = default;

  // A segment with room for appends, leased to the caller alone; a new one,
  // named `new_id` (an id never used before), when none has room.
  Result<Lease> lease(uint64_t new_id);
  // Writes `data` at `at` (>= lease.offset) of the leased segment.
  Status write(const Lease& lease, uint64_t at, std::string_view data);
  // Ends a lease: `used` bytes were written from lease.offset. keep: they
  // are a live body. Otherwise they are punched out; the segment goes on
  // after them either way.
  void finish(const Lease& lease, uint64_t used, bool keep);

  // The segment named `id`, or null when there is none (a lost file, or
  // one unlinked because nothing in it is live).
  std::shared_ptr<BodySegment> find(uint64_t id) const;

  // A body is gone from the store: its bytes go back to the file system.
  void release(const Extent& extent);

  // The live bodies of the segments found at open, listed by the store:
  // everything else in them is punched, and those with none are unlinked.
  // Until this has run, nothing found at open is unlinked.
  void reclaim(const std::vector<Extent>& live);
  // True when the segment was found at open (so reclaim() wants its bodies).
  bool foundAtOpen(uint64_t id) const;

  Stats stats() const;

  // Does the punches whose grace has ended (the store's maintenance).
  void punchDue();

 private:
  struct State {
    std::shared_ptr<BodySegment> segment;
    uint64_t end = 0;  // where the next body starts (appendable segments)
    int64_t live = 0;  // bytes of live bodies (counted once known)
    bool leased = false;
    bool found_at_open = false;  // read-only; live unknown until reclaim()
  };
  BodyFiles(std::string dir, uint64_t segment_bytes, int64_t sent_grace_us)
      : dir_(std::move(dir)), segment_bytes_(segment_bytes), sent_grace_us_(sent_grace_us) {}
  std::string pathOf(uint64_t id) const;
  // Forgets the segment when nothing in it is live or can become so, and
  // returns its path for the caller to unlink once mu_ is released (empty:
  // it stays).  REQUIRES: mu_ held.
  std::string dropIfDeadLocked(uint64_t id);
  static void unlinkDropped(const std::vector<std::string>& paths);

  const std::string dir_;
  const uint64_t segment_bytes_;
  const int64_t sent_grace_us_;
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, State> segments_;  // GUARDED_BY(mu_)
  std::vector<uint64_t> free_;                    // appendable, not leased  GUARDED_BY(mu_)
  bool reclaimed_ = false;                        // GUARDED_BY(mu_)
  // Bodies in segments found at open released before reclaim(): they are
  // not live whatever the store's listing says. GUARDED_BY(mu_)
  std::set<std::pair<uint64_t, uint64_t>> released_early_;  // segment, offset
};

}  // namespace tern::storage
