#include "edge/cache/request_flow.h"

#include <algorithm>
#include <optional>

#include "common/clock.h"
#include "common/log.h"
#include "edge/cache/fill.h"
#include "edge/http/cache_status.h"
#include "edge/http/conditional.h"
#include "edge/http/range.h"
#include "edge/http/surrogate_keys.h"
#include "edge/http/vary.h"
#include "edge/origin/origin_request.h"
#include "storage/cache_key.h"
#include "storage/nonblocking.h"

namespace tern::edge::cache {

namespace {
constexpr const char* kPhaseHelp =
    "Time per step of a request: lookup (memory, then disk), origin (until the response head, "
    "own fetch or another's), total (until this edge's response head)";
}  // namespace

FlowMetrics::FlowMetrics(metrics::Registry& r)
    : requests_h1(r.counter("tern_edge_requests_total", "Client requests received, by protocol",
                            "protocol=\"h1\"")),
      requests_h2(r.counter("tern_edge_requests_total", "Client requests received, by protocol",
                            "protocol=\"h2\"")),
      hits_memory(r.counter("tern_edge_cache_hits_total", "Responses served from cache",
                            "tier=\"memory\"")),
      hits_disk(
          r.counter("tern_edge_cache_hits_total", "Responses served from cache", "tier=\"disk\"")),
      hit_bytes_memory(r.counter("tern_edge_cache_hit_body_bytes_total",
                                 "Body bytes of the stored objects that hits were served from",
                                 "tier=\"memory\"")),
      hit_bytes_disk(r.counter("tern_edge_cache_hit_body_bytes_total",
                               "Body bytes of the stored objects that hits were served from",
                               "tier=\"disk\"")),
      misses(r.counter("tern_edge_cache_misses_total", "Cacheable requests not found in cache")),
      lookup_misses_memory(r.counter("tern_edge_cache_tier_misses_total",
                                     "Lookups a tier did not answer (not stored there, or "
                                     "unreadable)",
                                     "tier=\"memory\"")),
      phase_lookup(r.histogram("tern_edge_phase_seconds", kPhaseHelp, metrics::latencyBuckets(),
                               "phase=\"lookup\"")),
      phase_origin(r.histogram("tern_edge_phase_seconds", kPhaseHelp, metrics::latencyBuckets(),
                               "phase=\"origin\"")),
      phase_total(r.histogram("tern_edge_phase_seconds", kPhaseHelp, metrics::latencyBuckets(),
                              "phase=\"total\"")),
      disk_lookups_inline(r.counter("tern_edge_disk_lookups_total",
                                    "Disk-tier lookups, by where they ran: on the event loop "
                                    "(served from memory, no hand-off) or on the blocking pool",
                                    "path=\"inline\"")),
      disk_lookups_pool(r.counter("tern_edge_disk_lookups_total",
                                  "Disk-tier lookups, by where they ran: on the event loop "
                                  "(served from memory, no hand-off) or on the blocking pool",
                                  "path=\"pool\"")),
      lookup_misses_disk(r.counter("tern_edge_cache_tier_misses_total",
                                   "Lookups a tier did not answer (not stored there, or "
                                   "unreadable)",
                                   "tier=\"disk\"")),
      passes(r.counter("tern_edge_cache_passes_total", "Requests forwarded without cache lookup")),
      revalidations(
          r.counter("tern_edge_revalidations_total", "Conditional requests sent to origins")),
      revalidated_304(r.counter("tern_edge_revalidated_not_modified_total",
                                "Revalidations answered 304 by the origin")),
      collapsed(r.counter("tern_edge_collapsed_waits_total",
                          "Requests that waited on another request's origin fetch")),
      stale_served(
          r.counter("tern_edge_stale_served_total",
                    "Stale responses served (max-stale, stale-while-revalidate, stale-if-error)")),
      stored(r.counter("tern_edge_objects_stored_total", "Responses written to the cache")),
      store_failures(
          r.counter("tern_edge_store_failures_total", "Responses that could not be stored")),
      origin_errors(r.counter("tern_edge_origin_errors_total",
                              "Origin fetches that failed (connect, timeout, reset)")),
      not_modified(
          r.counter("tern_edge_not_modified_total", "304 responses sent to clients from cache")),
      fenced_revalidations(
          r.counter("tern_edge_fenced_revalidations_total",
                    "Stored responses revalidated because the edge was fenced (lease lapsed)")),
      origin_latency(
          r.histogram("tern_edge_origin_latency_seconds", "Time to the origin response head")) {}

std::string_view phaseName(Phase p) {
  switch (p) {
    case Phase::kReceive:
      return "receive";
    case Phase::kLookup:
      return "lookup";
    case Phase::kHit:
      return "hit";
    case Phase::kMiss:
      return "miss";
    case Phase::kRevalidate:
      return "revalidate";
    case Phase::kFetch:
      return "fetch";
    case Phase::kStore:
      return "store";
    case Phase::kPass:
      return "pass";
    case Phase::kPurge:
      return "purge";
    case Phase::kError:
      return "error";
    case Phase::kDeliver:
      return "deliver";
  }
  return "?";
}

bool allowedTransition(Phase from, Phase to) {
  using P = Phase;
  if (to == P::kError) return from != P::kDeliver;
  switch (from) {
    case P::kReceive:
      return to == P::kLookup || to == P::kPass || to == P::kPurge;
    case P::kLookup:
      return to == P::kLookup || to == P::kHit || to == P::kMiss || to == P::kRevalidate;
    case P::kMiss:
    case P::kRevalidate:
      return to == P::kFetch;
    // A fetch leads to its response (delivered, stored), to a stored copy
    // (stale on error: kHit), back to lookup, or to a fetch of its own.
    case P::kFetch:
      return to == P::kStore || to == P::kDeliver || to == P::kHit || to == P::kLookup ||
             to == P::kFetch;
    case P::kStore:
      return to == P::kDeliver;
    case P::kPass:
      return to == P::kStore || to == P::kDeliver;
    case P::kHit:
    case P::kPurge:
    case P::kError:
      return to == P::kDeliver;
    case P::kDeliver:
      return false;
  }
  return false;
}

namespace {

using storage::EntryMeta;
using storage::LookupResult;
using storage::ObjectKey;

// What reusing a stored response needs of its fields: kept with it when it
// was stored, or (a record written before that was kept) parsed now.
http::ResponseFreshness freshnessOf(const EntryMeta& m, const http::CachePolicy& policy) {
  const storage::StoredFreshness& k = m.freshness;
  if (!k.known) {  // (its stored lifetime may predate a 304 that changed it: not read)
    return http::responseFreshness(m.status, m.headers, m.request_time_ms, m.response_time_ms,
                                   policy);
  }
  http::ResponseFreshness f;
  f.lifetime_ms = std::max<int64_t>(0, m.freshness_lifetime_ms);
  f.initial_age_ms = k.initial_age_ms;
  f.no_cache = k.no_cache;
  f.must_revalidate = k.must_revalidate;
  f.proxy_revalidate = k.proxy_revalidate;
  f.s_maxage = k.s_maxage;
  f.immutable = k.immutable;
  if (k.stale_while_revalidate_s >= 0) f.stale_while_revalidate = k.stale_while_revalidate_s;
  if (k.stale_if_error_s >= 0) f.stale_if_error = k.stale_if_error_s;
  return f;
}

// Keeps what the response's fields say of its reuse with the entry.
void keepFreshness(int status, const http::Fields& headers, int64_t request_time_ms,
                   int64_t response_time_ms, const http::CachePolicy& policy, EntryMeta* m) {
  http::ResponseFreshness f =
      http::responseFreshness(status, headers, request_time_ms, response_time_ms, policy);
  m->freshness_lifetime_ms = f.lifetime_ms;
  storage::StoredFreshness& k = m->freshness;
  k.known = true;
  k.initial_age_ms = f.initial_age_ms;
  k.no_cache = f.no_cache;
  k.must_revalidate = f.must_revalidate;
  k.proxy_revalidate = f.proxy_revalidate;
  k.s_maxage = f.s_maxage;
  k.immutable = f.immutable;
  k.stale_while_revalidate_s = f.stale_while_revalidate.value_or(-1);
  k.stale_if_error_s = f.stale_if_error.value_or(-1);
}

// Fields a shared cache must not store (RFC 9111 5.2.2.4, 5.2.2.7) or that
// belong to one client only. Age stays: it is the age the response already
// had when it arrived (RFC 9111 4.2.3, corrected initial age), and the Age
// sent on a hit replaces it.
http::Fields storableHeaders(const http::Fields& headers) {
  http::CacheControl cc = http::effectiveResponseCacheControl(headers);
  http::Fields out;
  for (const auto& f : headers) {
    std::string lower = http::toLower(f.name);
    if (lower == "set-cookie" || http::isSurrogateKeyField(lower)) continue;
    bool drop = false;
    for (const auto& n : cc.private_fields) drop = drop || n == lower;
    for (const auto& n : cc.no_cache_fields) drop = drop || n == lower;
    if (!drop) out.push_back(f);
  }
  return out;
}

// A stored response refreshed by a 304 (RFC 9111 4.3.4): its fields updated
// from the 304's, the fields it may store and its surrogate keys taken from
// the result, its times reset. The one merge both the response served and
// the entry stored come from; `served` gets the merged fields as served.
EntryMeta refreshedBy304(const EntryMeta& stored, const http::Fields& not_modified,
                         int64_t request_time_ms, int64_t response_time_ms,
                         const http::CachePolicy& policy, http::Fields* served = nullptr) {
  EntryMeta meta = stored;
  http::Fields merged = stored.headers;
  http::mergeNotModified(merged, not_modified);
  meta.tags = http::surrogateKeys(merged);
  meta.headers = storableHeaders(merged);
  meta.request_time_ms = request_time_ms;
  meta.response_time_ms = response_time_ms;
  keepFreshness(meta.status, merged, request_time_ms, response_time_ms, policy, &meta);
  meta.stale = false;
  if (served) *served = std::move(merged);
  return meta;
}

std::optional<uint64_t> contentLength(const http::Fields& h) {
  auto v = http::findField(h, "content-length");
  if (!v) return std::nullopt;
  try {
    return std::stoull(std::string(*v));
  } catch (...) {
    return std::nullopt;
  }
}

bool sameHostLocation(std::string_view location, const storage::CacheKey& key,
                      storage::CacheKey* out) {
  auto k = location.starts_with("/")
               ? storage::CacheKey::fromRequest(key.scheme, key.host, location)
               : storage::CacheKey::fromUrl(location);
  if (!k.ok() || k->host != key.host) return false;
  *out = *k;
  return true;
}

class Transaction : public std::enable_shared_from_this<Transaction> {
 public:
  Transaction(FlowContext& ctx, std::shared_ptr<Request> req, std::shared_ptr<Responder> resp)
      : ctx_(ctx), req_(std::move(req)), resp_(std::move(resp)) {}

  // ---- kReceive ----
  void receive() {
    if (ctx_.config.on_phase) ctx_.config.on_phase(*req_, Phase::kReceive);
    (req_->protocol == Protocol::kHttp2 ? ctx_.metrics->requests_h2 : ctx_.metrics->requests_h1)
        .inc();
    auto host = http::findField(req_->headers, "host");
    auto key =
        storage::CacheKey::fromRequest(req_->scheme, host ? http::trim(*host) : "", req_->target);
    if (!key.ok()) return error(400, key.status().message());
    key_.url = *key;
    if (req_->method == "GET" || req_->method == "HEAD") return lookup();
    if (req_->method == "PURGE" && ctx_.config.purge_forwarder) return purge();
    pass();
  }

 private:
  // The one place where the request changes phase: checked against the
  // table (allowedTransition), told to the observer.
  void enter(Phase next) {
    if (!allowedTransition(phase_, next)) {
      TERN_LOG(kWarn, "request flow: transition outside the table",
               {{"from", std::string(phaseName(phase_))},
                {"to", std::string(phaseName(next))},
                {"key", key_.url.toString()}});
    }
    phase_ = next;
    if (ctx_.config.on_phase) ctx_.config.on_phase(*req_, next);
  }

  // ---- kLookup ----
  void lookup() {
    enter(Phase::kLookup);
    if (timed_ && lookup_start_us_ == 0) lookup_start_us_ = steadyNowUs();
    lookup_seq_ = ctx_.store->appliedSeq();
    auto r = ctx_.store->lookupMemory(key_);
    if (r.ok()) return found(std::move(*r), false);
    ctx_.metrics->lookup_misses_memory.inc();
    lookupDisk();
  }

  void lookupDisk() {
    if (!ctx_.store->hasDisk()) return miss();
    // A plain GET is most likely answered with the body: its first chunk is
    // read with the lookup (a conditional request is most likely a 304, a
    // HEAD has no body).
    const bool read_ahead = req_->method == "GET" &&
                            !http::findField(req_->headers, "if-none-match") &&
                            !http::findField(req_->headers, "if-modified-since");
    // First here on the loop, without blocking: an object whose blocks are
    // in memory (page cache) needs no hand-off. A read that would wait for
    // the disk is refused, and the lookup is redone on the pool.
    if (ctx_.store->diskHonoursNonBlockingReads()) {
      std::optional<Result<LookupResult>> r;
      {
        storage::NonBlockingReads scope;
        r = readDisk(read_ahead);
        if (scope.refused()) r.reset();
      }
      if (r) {
        ctx_.metrics->disk_lookups_inline.inc();
        return diskLookupDone(std::move(*r));
      }
    }
    ctx_.metrics->disk_lookups_pool.inc();
    auto self = shared_from_this();
    ctx_.pool([self, read_ahead] {
      auto shared = std::make_shared<Result<LookupResult>>(self->readDisk(read_ahead));
      self->ctx_.loop([self, shared] { self->diskLookupDone(std::move(*shared)); });
    });
  }

  Result<LookupResult> readDisk(bool read_ahead) {
    auto r = ctx_.store->lookupDisk(key_);
    if (r.ok() && read_ahead && r->meta->kind == storage::EntryKind::kResponse) {
      if (Status s = readAhead(&r->body); !s.isOk()) return s;  // the object was removed
    }
    return r;
  }

  void diskLookupDone(Result<LookupResult> r) {
    if (r.ok()) return found(std::move(r.value()), true);
    if (!r.status().isNotFound()) {
      TERN_LOG(kWarn, "disk lookup failed",
               {{"key", key_.url.toString()}, {"reason", r.status().toString()}});
    }
    ctx_.metrics->lookup_misses_disk.inc();
    miss();
  }

  void found(LookupResult r, bool from_disk) {
    // A purge applied while the entry was being looked up (a disk read on the
    // pool) may have matched it: look again, through the new markers.
    // (Under a purge storm, after three tries: ask the origin instead.)
    const bool raced = ctx_.store->appliedSeq() != lookup_seq_;
    if (raced && relookups_ < 3) {
      ++relookups_;
      return lookup();
    }
    if (r.meta->kind == storage::EntryKind::kVaryRecord) {
      if (!key_.variant.empty()) return miss();  // a record where a variant was expected
      vary_fields_ = r.meta->vary_fields;
      key_.variant = http::variantId(req_->headers, vary_fields_);
      status_.fwd = "vary-miss";
      return lookup();
    }
    lookupDone();  // (second looks after a purge race or for the variant included)
    from_disk_ = from_disk;
    stored_ = std::move(r);
    stored_meta_ = stored_->meta;  // (stored_ is moved out to deliver)
    const http::Fields& fields = stored_meta_->headers;
    // Never a content-coding the request does not accept (an origin that
    // ignored Accept-Encoding, or a variant from before normalization).
    if (std::find(vary_fields_.begin(), vary_fields_.end(), "accept-encoding") !=
        vary_fields_.end()) {
      if (auto ce = http::findField(fields, "content-encoding");
          ce && !http::acceptsCoding(http::combinedField(req_->headers, "accept-encoding"), *ce)) {
        stored_.reset();
        status_.fwd = "vary-miss";
        return miss();
      }
    }
    fenced_ = ctx_.config.lease && !ctx_.config.serve_stale_when_fenced &&
              ctx_.config.lease->fenced(steadyNowUs());
    if (fenced_) ctx_.metrics->fenced_revalidations.inc();
    bool force = stored_->must_revalidate || fenced_ || raced;
    reuse_ =
        http::decideReuse(req_->headers, freshnessOf(*stored_meta_, ctx_.config.policy),
                          stored_meta_->response_time_ms, wallNowMs(), force, ctx_.config.policy);
    switch (reuse_.reuse) {
      case http::Reuse::kFresh:
        return hit(false);
      case http::Reuse::kStaleAllowed:
        ctx_.metrics->stale_served.inc();
        status_.detail = "max-stale";
        return hit(true);
      case http::Reuse::kStaleWhileRevalidate:
        ctx_.metrics->stale_served.inc();
        status_.detail = "stale-while-revalidate";
        backgroundRevalidate();
        return hit(true);
      case http::Reuse::kRevalidate:
        break;
    }
    if (http::requestCacheControl(req_->headers).only_if_cached)
      return error(504, "only-if-cached");
    revalidate();
  }

  // ---- kHit ----
  void hit(bool stale) {
    enter(Phase::kHit);
    (from_disk_ ? ctx_.metrics->hits_disk : ctx_.metrics->hits_memory).inc();
    (from_disk_ ? ctx_.metrics->hit_bytes_disk : ctx_.metrics->hit_bytes_memory)
        .inc(stored_->meta->body_size);
    status_.hit = true;
    status_.ttl_s = reuse_.ttl_ms / 1000;
    (void)stale;
    deliverStored(std::move(*stored_), from_disk_);
  }

  // ---- kMiss ----
  void miss() {
    enter(Phase::kMiss);
    lookupDone();
    ctx_.metrics->misses.inc();
    if (status_.fwd.empty()) status_.fwd = "uri-miss";
    if (http::requestCacheControl(req_->headers).only_if_cached)
      return error(504, "only-if-cached");
    fetch(false);
  }

  // ---- kRevalidate ----
  void revalidate() {
    enter(Phase::kRevalidate);
    ctx_.metrics->revalidations.inc();
    status_.fwd = "stale";
    fetch(true);
  }

  void backgroundRevalidate() {
    std::string bkey = collapseKey(true);
    auto joined = ctx_.background->join(bkey);
    if (!joined.leader) return;  // one refresh at a time per key
    // A detached transaction that fetches and stores, answering nobody.
    struct Null final : Responder {
      void respond(int, http::Fields, std::unique_ptr<BodySource>,
                   std::optional<uint64_t>) override {}
    };
    auto req = std::make_shared<Request>(*req_);
    http::removeField(req->headers, "if-none-match");
    http::removeField(req->headers, "if-modified-since");
    auto t = std::make_shared<Transaction>(ctx_, req, std::make_shared<Null>());
    t->key_ = key_;
    t->vary_fields_ = vary_fields_;
    t->stored_ = LookupResult{stored_->meta, true, nullptr};
    t->stored_meta_ = stored_->meta;
    t->background_key_ = bkey;
    t->background_inflight_ = joined.inflight;
    t->phase_ = Phase::kFetch;  // it starts at the origin
    t->startOrigin(std::make_shared<Inflight>(), "", true);
  }

  std::string collapseKey(bool revalidation) const {
    std::string k = key_.url.toString();
    k.push_back('\0');
    k.append(key_.variant);
    if (revalidation) k.append("\0reval", 6);
    return k;
  }

  // ---- kFetch ----
  void fetch(bool revalidation) {
    enter(Phase::kFetch);
    if (timed_ && origin_start_us_ == 0) origin_start_us_ = steadyNowUs();
    // Fenced, a purge may have completed without this edge: a fetch already
    // in flight may carry what it removed. Only a fetch of our own is safe.
    if (ctx_.config.lease && !ctx_.config.serve_stale_when_fenced &&
        ctx_.config.lease->fenced(steadyNowUs()))
      return fetchAlone(revalidation, false);
    std::string ckey = collapseKey(revalidation);
    auto joined = ctx_.collapser->join(ckey, ctx_.store->appliedSeq());
    if (joined.leader && !revalidation && !rechecked_) {
      // Between our lookup and joining, the previous leader may have stored
      // the object and left: look again before going to the origin. Anyone
      // who joined us meanwhile is sent back to lookup.
      rechecked_ = true;
      lookup_seq_ = ctx_.store->appliedSeq();
      auto again = ctx_.store->lookupMemory(key_);
      if (again.ok()) {
        ctx_.collapser->release(ckey, joined.inflight);
        joined.inflight->finish(Status::notFound("stored meanwhile"));
        status_.fwd.clear();
        enter(Phase::kLookup);  // (a second look)
        return found(std::move(*again), false);
      }
    }
    if (joined.leader) {
      startOrigin(joined.inflight, ckey, revalidation);
    } else {
      ctx_.metrics->collapsed.inc();
      status_.collapsed = true;
    }
    awaitHead(joined.inflight, joined.leader, revalidation);
  }

  // Fetches on this transaction's own (uncollapsed) inflight.
  // `again`: after a shared fetch that cannot serve this request (a second
  // fetch in the request's path).
  void fetchAlone(bool revalidation, bool again = true) {
    if (again) enter(Phase::kFetch);
    auto inflight = std::make_shared<Inflight>();
    startOrigin(inflight, "", revalidation);
    awaitHead(inflight, true, revalidation);
  }

  origin::OriginRequest originRequest(bool revalidation, bool keep_method) const {
    origin::ClientRequest client;
    client.method = req_->method;
    client.target = req_->target;
    client.headers = &req_->headers;
    client.body = &req_->body;
    client.client_ip = req_->client_ip;
    client.scheme = req_->scheme;
    client.http2 = req_->protocol == Protocol::kHttp2;
    origin::ForwardAs as;
    as.keep_method = keep_method;
    const std::string origin_form =
        key_.url.path + (key_.url.has_query ? "?" + key_.url.query : "");
    as.origin_form = origin_form;
    as.default_authority = key_.url.host;
    as.via = ctx_.config.via;
    if (revalidation && stored_) as.validators = http::validatorsFor(stored_->meta->headers);
    return origin::forwardToOrigin(client, as);
  }

  // The leader's origin fetch. Stores the response when it is complete.
  void startOrigin(std::shared_ptr<Inflight> inflight, std::string ckey, bool revalidation,
                   bool pass = false) {
    auto self = shared_from_this();
    const uint64_t store_seq = ctx_.store->appliedSeq();
    const int64_t started_us = steadyNowUs();
    struct FetchState {
      bool storable = false;
      bool filling = false;  // a Fill writes the body and releases when done
      uint64_t bytes = 0;
      origin::OriginHead head;
    };
    auto st = std::make_shared<FetchState>();
    origin::OriginClient::Callbacks cb;
    cb.on_head = [self, inflight, ckey, st, revalidation, pass, started_us,
                  store_seq](Result<origin::OriginHead> head) {
      self->ctx_.metrics->origin_latency.observe(static_cast<double>(steadyNowUs() - started_us) /
                                                 1e6);
      if (!head.ok()) return;  // on_done reports the error
      st->head = *head;
      Inflight::Head h{head->status, head->headers, false};
      h.request_time_ms = head->request_time_ms;
      h.response_time_ms = head->response_time_ms;
      if (!pass) {
        if (revalidation && head->status == 304) {
          h.cacheable = true;
        } else {
          auto d = http::decideStore(self->req_->method == "HEAD" ? "GET" : self->req_->method,
                                     self->req_->headers, head->status, head->headers);
          auto vf = http::varyFields(head->headers);
          st->storable = d.store && vf.has_value();
          h.cacheable = st->storable;
          if (vf) h.variant = http::variantId(self->req_->headers, *vf);
          // Larger than the store takes: streamed (and shared), not stored.
          if (auto n = contentLength(head->headers); n && *n > self->ctx_.config.max_object_bytes)
            st->storable = false;
        }
      }
      if (!h.cacheable && !ckey.empty()) self->ctx_.collapser->release(ckey, inflight);
      if (st->storable) {
        h.stored = true;
        st->filling = true;
        self->startFill(inflight, st->head, store_seq, ckey);
      }
      inflight->setHead(std::move(h));
    };
    cb.on_data = [inflight, st](std::string data, std::function<void()> more) {
      st->bytes += data.size();
      inflight->append(std::move(data));
      if (inflight->mayReadMore(more)) more();
    };
    cb.on_done = [self, inflight, ckey, st, store_seq, revalidation](Status status) {
      if (!status.isOk()) self->ctx_.metrics->origin_errors.inc();
      inflight->finish(status);
      auto release = [self, inflight, ckey] {
        if (!ckey.empty()) self->ctx_.collapser->release(ckey, inflight);
        if (!self->background_key_.empty()) {
          self->ctx_.background->release(self->background_key_, self->background_inflight_);
        }
      };
      if (st->filling) return;  // the fill releases once the body is stored (or not)
      if (!status.isOk()) return release();
      if (revalidation && st->head.status == 304 && self->stored_meta_) {
        self->ctx_.metrics->revalidated_304.inc();
        EntryMeta meta =
            refreshedBy304(*self->stored_meta_, st->head.headers, st->head.request_time_ms,
                           st->head.response_time_ms, self->ctx_.config.policy);
        meta.store_seq = store_seq;
        self->ctx_.pool([self, meta, release] {
          Status s = self->ctx_.store->updateMeta(self->key_, meta);
          if (!s.isOk() && !s.isNotFound()) self->ctx_.metrics->store_failures.inc();
          release();
        });
        return;
      }
      release();
    };
    if (!background_key_.empty()) {
      // A background refresh answers nobody: no hints.
    } else {
      std::weak_ptr<Responder> weak = resp_;
      cb.on_interim = [weak](int status, http::Fields headers) {
        if (auto r = weak.lock()) r->interim(status, std::move(headers));
      };
    }
    ctx_.origin->fetch(originRequest(revalidation, pass), std::move(cb));
  }

  // ---- kStore (on the pool, while the body streams) ----
  void startFill(const std::shared_ptr<Inflight>& inflight, const origin::OriginHead& head,
                 uint64_t store_seq, const std::string& ckey) {
    enter(Phase::kStore);
    auto vf = http::varyFields(head.headers).value_or(std::vector<std::string>{});
    ObjectKey key = key_;
    key.variant = http::variantId(req_->headers, vf);
    EntryMeta meta;
    meta.status = static_cast<uint16_t>(head.status);
    meta.headers = storableHeaders(head.headers);
    meta.request_time_ms = head.request_time_ms;
    meta.response_time_ms = head.response_time_ms;
    keepFreshness(head.status, head.headers, head.request_time_ms, head.response_time_ms,
                  ctx_.config.policy, &meta);
    if (auto e = http::findField(head.headers, "etag")) meta.etag = std::string(*e);
    if (auto lm = http::findField(head.headers, "last-modified"))
      meta.last_modified = std::string(*lm);
    meta.tags = http::surrogateKeys(head.headers);
    meta.store_seq = store_seq;
    auto self = shared_from_this();
    const int64_t response_time_ms = head.response_time_ms;
    cache::startFill(ctx_.store, ctx_.pool, inflight, key, std::move(meta),
                     [self, inflight, ckey, vf, store_seq, response_time_ms](Status s) {
                       // The variant first, then the record that points lookups to it:
                       // until the collapser is released, a lookup without the record
                       // still joins this fetch instead of going to the origin.
                       if (s.isOk() && !vf.empty()) {
                         EntryMeta record;
                         record.kind = storage::EntryKind::kVaryRecord;
                         record.vary_fields = vf;
                         record.store_seq = store_seq;
                         record.response_time_ms = response_time_ms;
                         (void)self->ctx_.store->store({self->key_.url, ""}, record, {});
                       }
                       if (s.isOk()) {
                         self->ctx_.metrics->stored.inc();
                       } else if (s.code() != StatusCode::kFailedPrecondition &&
                                  s.source() != ErrorSource::kOrigin) {
                         self->ctx_.metrics->store_failures.inc();
                         TERN_LOG(kDebug, "response not stored",
                                  {{"key", self->key_.url.toString()}, {"reason", s.toString()}});
                       }
                       if (!ckey.empty()) self->ctx_.collapser->release(ckey, inflight);
                       if (!self->background_key_.empty())
                         self->ctx_.background->release(self->background_key_,
                                                        self->background_inflight_);
                     });
  }

  void awaitHead(std::shared_ptr<Inflight> inflight, bool leader, bool revalidation) {
    // Registered now, before any body chunk can be dropped; handed to the
    // body source, or released when this request does not read the body.
    auto reader = std::make_shared<Inflight::Reader>(inflight->read());
    if (!reader->valid()) return fetchAlone(revalidation);  // joined too late to share
    auto self = shared_from_this();
    auto fired = std::make_shared<bool>(false);
    inflight->subscribe(ctx_.loop, [self, inflight, leader, revalidation, fired, reader] {
      if (*fired) return;
      auto head = inflight->head();
      Status st;
      bool done = inflight->finished(&st);
      if (!head && !done) return;
      *fired = true;
      self->onHead(head, st, leader, revalidation, std::move(*reader));
    });
  }

  // `reader` is released on every path that does not stream the body.
  void onHead(const std::optional<Inflight::Head>& head, const Status& st, bool leader,
              bool revalidation, Inflight::Reader reader) {
    // (Every head: a waiter that then fetches alone counts until its own.)
    if (origin_start_us_ != 0) origin_us_ = steadyNowUs() - origin_start_us_;
    if (!head) {
      // The leader found the object stored after all: look it up again.
      if (st.isNotFound() && !relooked_) {
        relooked_ = true;
        return lookup();
      }
      // The origin failed: stale-if-error, else 502/504.
      if (revalidation && staleIfErrorAllowed()) return serveStaleOnError();
      return error(st.code() == StatusCode::kTimeout ? 504 : 502, st.message());
    }
    // An error is what would answer 500, 502, 503 or 504 (RFC 5861 4).
    const bool origin_error = head->status == 500 || (head->status >= 502 && head->status <= 504);
    if (revalidation && origin_error && staleIfErrorAllowed()) return serveStaleOnError();
    if (!leader && !head->cacheable) return fetchAlone(revalidation);  // uncacheable: go on our own
    if (!leader && head->status != 304) {
      // A waiter shares what its own request could reuse from the cache
      // (RFC 9111 4): a response already stale on arrival (its Age past its
      // lifetime) is not served to a request that came in after it.
      const auto d =
          http::decideReuse(req_->headers, head->status, head->headers, head->request_time_ms,
                            head->response_time_ms, wallNowMs(), false, ctx_.config.policy);
      if (d.reuse != http::Reuse::kFresh && d.reuse != http::Reuse::kStaleAllowed) {
        status_.collapsed = false;
        return fetchAlone(revalidation);
      }
    }
    if (!leader) {
      // A waiter whose request selects another Vary variant than the
      // leader's cannot share the response.
      auto vf = http::varyFields(head->headers);
      if (vf && !vf->empty() && http::variantId(req_->headers, *vf) != head->variant) {
        status_.collapsed = false;
        return fetchAlone(revalidation);
      }
    }
    status_.fwd_status = head->status;
    if (revalidation && head->status == 304 && stored_) {
      // Merge the 304 into what we serve; the leader updates the store.
      const int64_t now_ms = wallNowMs();
      http::Fields merged;
      auto refreshed = std::make_shared<EntryMeta>(refreshedBy304(
          *stored_->meta, head->headers, now_ms, now_ms, ctx_.config.policy, &merged));
      refreshed_fields_ = std::move(merged);
      stored_->meta = refreshed;
      reuse_.age_ms = 0;
      reuse_.ttl_ms = refreshed->freshness_lifetime_ms;
      status_.ttl_s = reuse_.ttl_ms / 1000;
      return deliverStored(std::move(*stored_), from_disk_);
    }
    status_.stored = head->stored;
    http::Fields headers = head->headers;
    if (auto ttl =
            http::freshnessLifetimeMs(head->status, headers, wallNowMs(), ctx_.config.policy);
        head->cacheable) {
      status_.ttl_s = ttl / 1000;
    }
    auto length = contentLength(headers);
    // Conditional requests of the client on a fresh response.
    if (head->status == 200 && http::notModified(req_->method, req_->headers, headers)) {
      ctx_.metrics->not_modified.inc();
      return send(304, http::headersFor304(headers), nullptr, std::nullopt);
    }
    if (req_->method == "HEAD") return send(head->status, std::move(headers), nullptr, length);
    // Range on a miss: the whole object is fetched (and stored); the client
    // gets its range, as on a hit.
    if (head->status == 200 && length) {
      auto range = http::decideRange(req_->method, req_->headers, headers, *length);
      if (range.outcome == http::RangeOutcome::kPartial) {
        http::setField(headers, "Content-Range", range.content_range);
        const uint64_t n = range.range.last - range.range.first + 1;
        return send(206, std::move(headers),
                    rangeSource(inflightSource(std::move(reader), ctx_.loop), range.range.first,
                                range.range.last),
                    n);
      }
      if (range.outcome == http::RangeOutcome::kUnsatisfiable) {
        http::Fields h = {{"Content-Range", range.content_range}};
        return send(416, std::move(h), stringSource(""), 0);
      }
    }
    send(head->status, std::move(headers), inflightSource(std::move(reader), ctx_.loop), length);
  }

  bool staleIfErrorAllowed() const {
    return !fenced_ && stored_ && stored_->body && -reuse_.ttl_ms <= reuse_.stale_if_error_ms &&
           reuse_.stale_if_error_ms > 0;
  }

  void serveStaleOnError() {
    ctx_.metrics->stale_served.inc();
    status_.detail = "stale-if-error";
    status_.hit = true;
    status_.fwd.clear();
    status_.ttl_s = reuse_.ttl_ms / 1000;
    deliverStored(std::move(*stored_), from_disk_);
  }

  // ---- kPass ----
  // ---- PURGE (forwarded to the coordinator: global, never node-local) ----
  // ---- kPurge (edge/cache/purge_request.h reads the request) ----
  void purge() {
    enter(Phase::kPurge);
    status_.fwd = "bypass";
    status_.detail = "purge";
    auto f = purgeRequest(req_->headers, key_.url, req_->client_ip, ctx_.config.purge_token);
    if (!f.ok()) {
      http::Fields h = {{"Content-Type", "application/json"},
                        {"Cache-Control", "no-store"},
                        {"WWW-Authenticate", "Bearer realm=\"tern-edge\""}};
      std::string body = "{\"error\":{\"code\":\"unauthenticated\",\"message\":\"" +
                         std::string(f.status().message()) + "\"}}\n";
      return send(401, std::move(h), stringSource(body), body.size());
    }
    auto self = shared_from_this();
    ctx_.config.purge_forwarder(std::move(*f), [self](int status, std::string json) {
      self->ctx_.loop([self, status, json = std::move(json)] {
        http::Fields h = {{"Content-Type", "application/json"}, {"Cache-Control", "no-store"}};
        self->send(status, std::move(h), stringSource(json), json.size());
      });
    });
  }

  void pass() {
    enter(Phase::kPass);
    ctx_.metrics->passes.inc();
    status_.fwd = "request";
    if (timed_) origin_start_us_ = steadyNowUs();
    auto inflight = std::make_shared<Inflight>();
    auto reader = std::make_shared<Inflight::Reader>(inflight->read());
    startOrigin(inflight, "", false, /*pass=*/true);
    auto self = shared_from_this();
    auto fired = std::make_shared<bool>(false);
    inflight->subscribe(ctx_.loop, [self, inflight, fired, reader] {
      if (*fired) return;
      auto head = inflight->head();
      Status st;
      bool done = inflight->finished(&st);
      if (!head && !done) return;
      *fired = true;
      if (self->timed_) self->origin_us_ = steadyNowUs() - self->origin_start_us_;
      if (!head) {
        reader->release();
        return self->error(st.code() == StatusCode::kTimeout ? 504 : 502, st.message());
      }
      self->status_.fwd_status = head->status;
      // The response goes out only once the invalidation is done: a GET
      // sent right after it must never hit the old entry.
      self->invalidateAfterUnsafe(head->status, head->headers, [self, head, reader] {
        auto length = contentLength(head->headers);
        self->send(head->status, head->headers, inflightSource(std::move(*reader), self->ctx_.loop),
                   length);
      });
    });
  }

  // RFC 9111 4.4: a non-error response to an unsafe method invalidates the
  // target URI and same-origin Location / Content-Location.
  // Calls `then` on the loop when done.
  void invalidateAfterUnsafe(int status, const http::Fields& headers, Task then) {
    const std::string& m = req_->method;
    if (m == "GET" || m == "HEAD" || m == "OPTIONS" || m == "TRACE" || status >= 400) return then();
    std::vector<storage::CacheKey> urls = {key_.url};
    for (auto name : {"location", "content-location"}) {
      storage::CacheKey other;
      if (auto v = http::findField(headers, name);
          v && sameHostLocation(http::trim(*v), key_.url, &other)) {
        urls.push_back(other);
      }
    }
    auto groups = http::groupInvalidations(headers);
    auto self = shared_from_this();
    ctx_.pool([self, urls, groups = std::move(groups), then = std::move(then)]() mutable {
      for (const auto& u : urls) (void)self->ctx_.store->removeUrl(u);
      if (!groups.empty() && self->ctx_.config.group_invalidator)
        self->ctx_.config.group_invalidator(std::move(groups));
      self->ctx_.loop(std::move(then));
    });
  }

  // ---- kDeliver ----
  void deliverStored(LookupResult r, bool from_disk) {
    std::shared_ptr<const EntryMeta> meta = std::move(r.meta);
    if (refreshed_fields_) {  // fields a 304 just refreshed go out as merged
      auto merged = std::make_shared<EntryMeta>(*meta);
      merged->headers = std::move(*refreshed_fields_);
      refreshed_fields_.reset();
      meta = std::move(merged);
    }
    const std::string age = std::to_string(std::max<int64_t>(0, reuse_.age_ms / 1000));
    const http::Fields& stored = meta->headers;
    if (http::notModified(req_->method, req_->headers, stored)) {
      ctx_.metrics->not_modified.inc();
      http::Fields h = http::headersFor304(stored);
      h.push_back({"Age", age});
      return send(304, std::move(h), nullptr, std::nullopt);
    }
    // The stored fields go out from the entry itself; only these are added
    // (written over the list the responder gave back from its last one).
    http::Fields added = resp_->recycledFields();
    http::FieldsRefill refill(&added);
    refill.add("Age", age);
    const uint64_t length = meta->body_size;
    std::unique_ptr<BodySource> body;
    if (req_->method != "HEAD" && r.body && meta->status != 204)
      body = storedSource(std::move(r.body), from_disk, ctx_.loop, ctx_.pool);
    auto range = http::decideRange(req_->method, req_->headers, stored, length);
    if (meta->status == 200 && range.outcome == http::RangeOutcome::kPartial) {
      refill.add("Content-Range", range.content_range);
      uint64_t n = range.range.last - range.range.first + 1;
      return sendStored(206, std::move(meta), added, refill,
                        rangeSource(std::move(body), range.range.first, range.range.last), n);
    }
    if (meta->status == 200 && range.outcome == http::RangeOutcome::kUnsatisfiable) {
      http::Fields h = {{"Content-Range", range.content_range}};
      return send(416, std::move(h), stringSource(""), 0);
    }
    const int status = meta->status;
    // (A 204 has no length: RFC 9110 8.6.)
    sendStored(status, std::move(meta), added, refill, std::move(body),
               status == 204 ? std::nullopt : std::optional<uint64_t>(length));
  }

  void error(int code, const std::string& why) {
    if (sent_) return;
    enter(Phase::kError);
    if (status_.fwd.empty() && !status_.hit) status_.fwd = "bypass";
    status_.hit = false;
    status_.detail = why.substr(0, 120);
    std::string body = std::to_string(code) + " " + why + "\n";
    http::Fields h = {{"Content-Type", "text/plain"}, {"Cache-Control", "no-store"}};
    send(code, std::move(h), stringSource(body), body.size());
  }

  // A stored response: its fields from the entry (the responder writes
  // them without a copy), `added` with Via, Cache-Status and the timings.
  // `refill` writes `added` (over what it held); it is handed on.
  void sendStored(int status, std::shared_ptr<const EntryMeta> meta, http::Fields& added,
                  http::FieldsRefill& refill, std::unique_ptr<BodySource> body,
                  std::optional<uint64_t> length) {
    if (sent_) return;
    sent_ = true;
    enter(Phase::kDeliver);
    if (ctx_.config.expose_cache_key) status_.key = key_.url.toString();
    // (An upstream Via is joined first; most stored responses have none.)
    std::string upstream_via;
    if (http::findField(meta->headers, "via"))
      upstream_via = http::combinedField(meta->headers, "via");
    if (upstream_via.empty()) {
      refill.add("Via", ctx_.config.via);
    } else {
      refill.add("Via", upstream_via).value.append(", ").append(ctx_.config.via);
    }
    http::appendCacheStatus(status_, &refill.add("Cache-Status", "").value);
    refill.done();
    timePhases(&added);
    resp_->respondStored(status, std::move(meta), std::move(added), std::move(body), length);
  }

  void send(int status, http::Fields headers, std::unique_ptr<BodySource> body,
            std::optional<uint64_t> length) {
    if (sent_) return;
    sent_ = true;
    enter(Phase::kDeliver);
    http::stripHopByHop(headers);
    std::erase_if(headers, [](const http::Field& f) {
      return http::isSurrogateKeyField(f.name) || http::iequals(f.name, "content-length");
    });
    if (ctx_.config.expose_cache_key) status_.key = key_.url.toString();
    std::string via = http::combinedField(headers, "via");
    http::setField(headers, "Via", via.empty() ? ctx_.config.via : via + ", " + ctx_.config.via);
    headers.push_back({"Cache-Status", http::formatCacheStatus(status_)});
    timePhases(&headers);
    if (status == 304 || status == 204 || (status >= 100 && status < 200)) {
      body = nullptr;
      length = std::nullopt;
    }
    resp_->respond(status, std::move(headers), std::move(body), length);
  }

  // The lookup's time, once: the first lookup until found or missed (a
  // second look after waiting for another fetch is not counted again).
  void lookupDone() {
    if (lookup_start_us_ != 0 && lookup_us_ < 0) lookup_us_ = steadyNowUs() - lookup_start_us_;
  }

  // Where this request's time went, up to its response head: per-phase
  // histograms, and a Server-Timing header (RFC: W3C Server Timing) when the
  // configuration or the request's debug token asks for it.
  void timePhases(http::Fields* headers) {
    if (!timed_) return;
    const int64_t total_us = steadyNowUs() - received_us_;
    if (ctx_.config.phase_metrics) {
      auto& m = *ctx_.metrics;
      if (lookup_us_ >= 0) m.phase_lookup.observe(static_cast<double>(lookup_us_) / 1e6);
      if (origin_us_ >= 0) m.phase_origin.observe(static_cast<double>(origin_us_) / 1e6);
      // (A PURGE waits for the coordinator, maybe for every edge: not a
      // request's time to serve.)
      if (req_->method != "PURGE") m.phase_total.observe(static_cast<double>(total_us) / 1e6);
    }
    bool wanted = ctx_.config.server_timing;
    if (!wanted && !ctx_.config.debug_token.empty()) {
      auto token = http::findField(req_->headers, "tern-debug");
      wanted = token && sameSecret(http::trim(*token), ctx_.config.debug_token);
    }
    if (!wanted) return;
    std::string v;
    auto add = [&](const char* name, int64_t us) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%s%s;dur=%.3f", v.empty() ? "" : ", ", name,
                    static_cast<double>(us) / 1000);
      v += buf;
    };
    if (lookup_us_ >= 0) add("lookup", lookup_us_);
    if (origin_us_ >= 0) add("origin", origin_us_);
    add("total", total_us);
    headers->push_back({"Server-Timing", std::move(v)});
  }

  FlowContext& ctx_;
  std::shared_ptr<Request> req_;
  std::shared_ptr<Responder> resp_;
  // Whether this request's phases are timed (metrics, or Server-Timing
  // that may be asked for); a request that is not reads no clock for them.
  const bool timed_ =
      ctx_.config.phase_metrics || ctx_.config.server_timing || !ctx_.config.debug_token.empty();
  const int64_t received_us_ = timed_ ? steadyNowUs() : 0;
  int64_t lookup_start_us_ = 0;
  int64_t lookup_us_ = -1;  // -1: no lookup (or not done)
  int64_t origin_start_us_ = 0;
  int64_t origin_us_ = -1;  // until the origin's (or the leader's) response head
  ObjectKey key_;
  std::vector<std::string> vary_fields_;
  std::optional<LookupResult> stored_;
  std::shared_ptr<const EntryMeta> stored_meta_;  // what the lookup found, kept
  std::optional<http::Fields> refreshed_fields_;  // stored fields merged with a 304's
  bool rechecked_ = false;                        // the leader's second look before fetching
  uint64_t lookup_seq_ = 0;                       // purges applied when the current lookup began
  int relookups_ = 0;
  bool relooked_ = false;  // a waiter sent back to lookup once
  bool from_disk_ = false;
  http::ReuseDecision reuse_;
  http::CacheStatus status_;
  bool sent_ = false;
  Phase phase_ = Phase::kReceive;
  bool fenced_ = false;  // the lease had lapsed when the entry was found
  std::string background_key_;
  std::shared_ptr<Inflight> background_inflight_;
};

}  // namespace

namespace {

// Allocates from a TransactionSlot. Each copy holds the request the slot
// lives with: the control block keeps one, so the slot outlives the block
// until it is given back.
template <class T>
struct SlotAllocator {
  using value_type = T;
  SlotAllocator(TransactionSlot* s, std::shared_ptr<const void> o) : slot(s), owner(std::move(o)) {}
  template <class U>
  SlotAllocator(const SlotAllocator<U>& other) : slot(other.slot), owner(other.owner) {}
  T* allocate(size_t n) { return static_cast<T*>(slot->take(n * sizeof(T))); }
  void deallocate(T* p, size_t) { slot->give(p); }
  template <class U>
  bool operator==(const SlotAllocator<U>& other) const {
    return slot == other.slot;
  }

  TransactionSlot* slot;
  std::shared_ptr<const void> owner;
};

}  // namespace

TransactionSlot::~TransactionSlot() { ::operator delete(block_); }

void* TransactionSlot::take(size_t bytes) {
  if (block_ != nullptr && !lent_ && size_ >= bytes) {
    lent_ = true;
    return block_;
  }
  void* p = ::operator new(bytes);
  if (block_ == nullptr) {
    block_ = p;
    size_ = bytes;
    lent_ = true;
  }
  return p;
}

void TransactionSlot::give(void* block) {
  if (block == block_) {
    lent_ = false;
  } else {
    ::operator delete(block);
  }
}

void handleRequest(FlowContext& ctx, std::shared_ptr<Request> request,
                   std::shared_ptr<Responder> responder) {
  std::make_shared<Transaction>(ctx, std::move(request), std::move(responder))->receive();
}

void handleRequest(FlowContext& ctx, std::shared_ptr<Request> request,
                   std::shared_ptr<Responder> responder, TransactionSlot* slot) {
  // (The slot's memory comes from operator new, aligned for any such type.)
  static_assert(alignof(Transaction) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__);
  SlotAllocator<Transaction> alloc(slot, request);
  std::allocate_shared<Transaction>(alloc, ctx, std::move(request), std::move(responder))
      ->receive();
}

}  // namespace tern::edge::cache
