#pragma once
// Fill: writes an origin response into the cache while it streams to the
// clients (the kStore step). It is one more reader of the Inflight: it takes
// each chunk as it arrives and appends it to the store's writer on the
// blocking pool, so a large body is never held whole (the disk tier takes
// it chunk by chunk; see Inflight for what stays in memory). When the
// response is complete the object is committed; when the fetch fails, the
// store refuses it or a purge matched it meanwhile, nothing is stored.
//
// Thread-safety: start() from any thread; the work runs on `pool`, one step
// at a time per fill.

#include <functional>
#include <memory>

#include "edge/cache/executor.h"
#include "edge/cache/inflight.h"
#include "edge/cache/tiered_store.h"

namespace tern::edge::cache {

// `done` runs once, on the pool: OK once committed, else why not stored
// (the fetch's own error when the origin failed).
// REQUIRES: no body chunk has been appended to `inflight` yet.
void startFill(TieredStore* store, Executor pool, const std::shared_ptr<Inflight>& inflight,
               storage::ObjectKey key, storage::EntryMeta meta, std::function<void(Status)> done);

}  // namespace tern::edge::cache
