#pragma once
// BodySource: a response body delivered chunk by chunk, asynchronously, so
// that a session writes a large body without holding it whole. Sources exist
// for a string, a stored object (no copy; the disk tier's reads that may
// block run on the blocking pool), an in-flight origin response, and a byte
// range of another source.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "edge/cache/executor.h"
#include "edge/cache/inflight.h"
#include "storage/object_store.h"

namespace tern::edge::cache {

class BodySource {
 public:
  virtual ~BodySource() = default;
  // Calls `done` (on the session's loop) with the next chunk, or an empty
  // view at the end. The view stays valid until the next call. `done` may
  // destroy the source: a source touches nothing of its own after calling it.
  virtual void next(std::function<void(Result<std::string_view>)> done) = 0;
  // The next chunk when it can be had at once, without waiting or blocking
  // (a body in memory, a chunk read ahead), as next() would give it;
  // nullopt: nothing taken, call next(). Saves the callback on a hit.
  virtual std::optional<Result<std::string_view>> tryNext() { return std::nullopt; }
  // When the rest of the body lies in a file (a large memory-tier body):
  // fills `out` with it, for sendfile(2), and the source is at its end.
  // The file stays valid while the source lives. False: read on.
  virtual bool takeFile(storage::FileRegion* out) {
    (void)out;
    return false;
  }
};

std::unique_ptr<BodySource> stringSource(std::string body);
// Reads a stored object; `blocking` reads run on `pool` and complete on `loop`.
std::unique_ptr<BodySource> storedSource(std::unique_ptr<storage::BodyReader> reader, bool blocking,
                                         Executor loop, Executor pool);
// Reads the first chunk of `*reader` now, on the calling thread (the
// blocking pool, right after the lookup), unless it is in memory already;
// `*reader` then hands it out without I/O. An object of one chunk is then
// served with no further hand-off to the pool. Errors are the reader's
// (Corruption: the object was removed).
Status readAhead(std::unique_ptr<storage::BodyReader>* reader);
// Streams an in-flight origin response; `reader` (valid) holds back the
// chunks this client has not read yet.
std::unique_ptr<BodySource> inflightSource(Inflight::Reader reader, Executor loop);
// Bytes [first, last] of `inner`.
std::unique_ptr<BodySource> rangeSource(std::unique_ptr<BodySource> inner, uint64_t first,
                                        uint64_t last);

}  // namespace tern::edge::cache
