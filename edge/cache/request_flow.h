#pragma once
// The journey of one request through the cache, as a state machine (see
// docs/request-journey.md):
//
//   kReceive -> kLookup | kPass | kPurge
//   kLookup  -> kHit | kMiss | kRevalidate (kLookup again: a Vary record,
//               or a purge applied while looking)
//   kMiss, kRevalidate -> kFetch -> kStore (the fill, on the pool) -> kDeliver
//   kFetch   -> kLookup (stored meanwhile, or a shared fetch not usable)
//   kHit, kPass, kPurge -> kDeliver; any phase -> kError -> kDeliver
//
// Each phase is a function of Transaction; every transition goes through
// one place (Transaction::enter), which checks it against this table and
// tells FlowConfig::on_phase. The flow runs on the event loop of the
// client's connection; blocking steps (disk lookups and writes) run on the
// pool and come back.
//
// Thread-safety: a RequestFlow belongs to one event loop; the shared parts
// (store, collapser, metrics) are thread-safe.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/metrics.h"
#include "edge/cache/body_source.h"
#include "edge/cache/collapser.h"
#include "edge/cache/executor.h"
#include "edge/cache/lease_gate.h"
#include "edge/cache/purge_request.h"
#include "edge/cache/tiered_store.h"
#include "edge/http/fields.h"
#include "edge/http/freshness.h"
#include "edge/origin/origin_client.h"
#include "storage/purge_spec.h"

namespace tern::edge::cache {

enum class Protocol : uint8_t { kHttp1, kHttp2 };

enum class Phase : uint8_t {
  kReceive,
  kLookup,
  kHit,
  kMiss,
  kRevalidate,
  kFetch,
  kStore,
  kPass,
  kPurge,
  kError,
  kDeliver,
};
std::string_view phaseName(Phase p);
// Whether the state machine may go from `from` to `to` (the table above).
bool allowedTransition(Phase from, Phase to);

struct Request {
  Protocol protocol = Protocol::kHttp1;  // of the client connection
  std::string method;
  std::string target;
  std::string scheme = "http";  // of the client connection
  http::Fields headers;
  std::string body;
  std::string client_ip;
  int64_t received_ms = 0;
};

class Responder {
 public:
  virtual ~Responder() = default;
  // Sends one response. With `content_length` the body is framed by it, else
  // chunked. For HEAD, pass the length of the GET body and a null body.
  virtual void respond(int status, http::Fields headers, std::unique_ptr<BodySource> body,
                       std::optional<uint64_t> content_length) = 0;
  // A stored response: the fields of `stored` that are sent from the store
  // (storedFieldIsSent), then `added` (Age, Via, Cache-Status, ...). A
  // responder that writes the head itself writes them without copying;
  // this default joins them and calls respond().
  virtual void respondStored(int status, std::shared_ptr<const storage::EntryMeta> stored,
                             http::Fields added, std::unique_ptr<BodySource> body,
                             std::optional<uint64_t> content_length);
  // An interim response (103 Early Hints) ahead of the final one; ignored
  // once the final response has started.
  virtual void interim(int /*status*/, http::Fields /*headers*/) {}
  // A field list that respondStored() was given before and is done with,
  // to be written over (http::FieldsRefill) for the next: its room, and
  // that of its strings, is reused. Empty when there is none.
  virtual http::Fields recycledFields() { return {}; }
};

// Whether a field of a stored response goes out as stored on a hit: not
// the ones the hit writes afresh (Age, Via, Content-Length), nor hop-by-hop
// or surrogate-key fields (never stored now; a record may predate that).
bool storedFieldIsSent(std::string_view name);

struct FlowConfig {
  std::string via = "1.1 tern";
  http::CachePolicy policy;
  bool expose_cache_key = false;
  // Responses larger than this stream to the client without being stored
  // (the disk tier's max_object_bytes).
  uint64_t max_object_bytes = 64ULL << 20;
  // Fenced (lease lapsed): every stored response is revalidated first and
  // nothing stale is served on origin errors, unless serve_stale_when_fenced.
  // Null: never fenced (no coordinator).
  const LeaseGate* lease = nullptr;
  bool serve_stale_when_fenced = false;
  // The PURGE method: when set, it is answered here by forwarding to the
  // coordinator (a global purge); when not, PURGE goes to the origin like
  // any other method.
  std::function<void(PurgeForward, std::function<void(int status, std::string json)>)>
      purge_forwarder;
  // Required as "Authorization: Bearer <token>" on PURGE; with an empty
  // token every PURGE is refused.
  // Optional: a PURGE must also carry this token (checked here, before it
  // is forwarded with the caller's credential).
  std::string purge_token;
  // A Server-Timing header on every response, or on those whose request
  // carries "Tern-Debug: <debug_token>" (empty: never per request).
  bool server_timing = false;
  std::string debug_token;
  // Per-phase histograms (tern_edge_phase_seconds). With these off and no
  // Server-Timing asked for, a request reads no clock for its phases.
  bool phase_metrics = true;
  // RFC 9875 Cache-Group-Invalidation on a response to an unsafe request:
  // called (on the blocking pool) with the groups to mark stale. With a
  // coordinator it is a global soft purge of those keys; standalone, local.
  std::function<void(std::vector<std::string> groups)> group_invalidator;
  // Told of every phase a request enters, on the thread it runs on (tests
  // and tracing; null: nobody is).
  std::function<void(const Request&, Phase)> on_phase;
};

struct FlowMetrics {
  explicit FlowMetrics(metrics::Registry& r);
  metrics::Counter& requests_h1;  // tern_edge_requests_total{protocol}
  metrics::Counter& requests_h2;
  metrics::Counter& hits_memory;
  metrics::Counter& hits_disk;
  metrics::Counter& hit_bytes_memory;  // body bytes of the stored objects hits came from
  metrics::Counter& hit_bytes_disk;
  metrics::Counter& misses;
  metrics::Counter& lookup_misses_memory;  // lookups a tier did not answer
  metrics::Histogram& phase_lookup;        // tern_edge_phase_seconds{phase}
  metrics::Histogram& phase_origin;
  metrics::Histogram& phase_total;
  metrics::Counter& disk_lookups_inline;  // disk lookups served on the loop
  metrics::Counter& disk_lookups_pool;    // ... and on the blocking pool
  metrics::Counter& lookup_misses_disk;
  metrics::Counter& passes;
  metrics::Counter& revalidations;
  metrics::Counter& revalidated_304;
  metrics::Counter& collapsed;
  metrics::Counter& stale_served;
  metrics::Counter& stored;
  metrics::Counter& store_failures;
  metrics::Counter& origin_errors;
  metrics::Counter& not_modified;
  metrics::Counter& fenced_revalidations;
  metrics::Histogram& origin_latency;
};

// Everything a flow needs; one per event loop (the origin client is
// per-loop, the rest is shared).
struct FlowContext {
  TieredStore* store;
  Collapser* collapser;
  origin::OriginClient* origin;
  Executor loop;
  Executor pool;
  FlowConfig config;
  FlowMetrics* metrics;
  // Keys with a background revalidation in flight (stale-while-revalidate:
  // one at a time per key). Shared by all loops.
  Collapser* background;
};

// Memory for a connection's transactions, one at a time: a transaction is
// built in the block the last one used, once that one is gone. It must live
// in the same allocation as the request the transaction is given (a
// transaction keeps its request, and so its slot, until its block is back).
// Not thread-safe beyond that: one transaction of the slot at a time.
class TransactionSlot {
 public:
  TransactionSlot() = default;
  ~TransactionSlot();
  TransactionSlot(const TransactionSlot&) = delete;
  TransactionSlot& operator=(const TransactionSlot&) = delete;

  // The kept block when it is free and large enough; new memory otherwise
  // (kept as the slot's block if it has none).
  void* take(size_t bytes);
  // Memory from take(): the slot's block is kept, any other freed.
  void give(void* block);

 private:
  void* block_ = nullptr;
  size_t size_ = 0;
  bool lent_ = false;
};

void handleRequest(FlowContext& ctx, std::shared_ptr<Request> request,
                   std::shared_ptr<Responder> responder);
// The same, with the transaction built in `slot` (see TransactionSlot).
void handleRequest(FlowContext& ctx, std::shared_ptr<Request> request,
                   std::shared_ptr<Responder> responder, TransactionSlot* slot);

}  // namespace tern::edge::cache
