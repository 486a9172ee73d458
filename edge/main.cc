// tern-edge: wiring only. Reads the configuration, opens the cache tiers,
// starts the server and waits for SIGTERM/SIGINT to stop gracefully.

#include <sys/resource.h>

#include <signal.h>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <set>

#include "common/config.h"
#include "common/log.h"
#include "edge/agent/purge_agent.h"
#include "edge/server/server.h"
#include "proto/grpc_runtime.h"
#include "storage/rocksdb/rocks_store.h"

using namespace tern;
using namespace tern::edge;

namespace {

Config makeConfig() {
  Config c("tern-edge", "TERN_EDGE_");
  c.add({"listen", "127.0.0.1:8080", "HTTP listen address host:port (port 0: any free port)"});
  c.add({"tls.listen", "", "HTTPS listen address host:port (empty: no TLS)"});
  c.add({"tls.cert", "", "PEM certificate chain for tls.listen"});
  c.add({"tls.key", "", "PEM private key for tls.listen"});
  c.add({"admin_listen", "127.0.0.1:9080", "admin listen address for /metrics /healthz /readyz"});
  c.add({"origin", "", "default origin, http[s]://host:port (repeatable: round robin)", true});
  c.add({"origin_map", "", "origin for one Host: host=http://addr:port (repeatable)", true});
  c.add({"origin_tls_verify", "true", "verify certificates of https origins"});
  c.add({"origin_ca_file", "", "PEM CA bundle for https origins (default: the system's)"});
  c.add({"origin_connect_timeout", "3s", "timeout to connect to an origin"});
  c.add({"origin_read_timeout", "30s", "timeout for each read from an origin"});
  c.add({"origin_idle_timeout", "4s",
         "idle keep-alive connections to origins are closed after this (keep it below the "
         "origins' own keep-alive timeout)"});
  c.add({"cache.dir", "./data/edge", "folder of the persistent cache"});
  c.add({"cache.disk_budget", "1GiB", "bytes kept on disk at most"});
  c.add({"cache.memory_budget", "256MiB", "bytes kept in memory at most"});
  c.add({"cache.max_object_size", "64MiB", "larger responses are served but not stored"});
  c.add({"cache.memory_max_object_size", "8MiB", "larger objects stay on disk only"});
  c.add({"cache.sendfile_min_size", "256KiB",
         "memory-tier bodies at least this large are kept in sealed in-memory files and sent "
         "with sendfile(2) over plain HTTP/1.1 (0: never)"});
  c.add({"cache.max_variants", "32", "Vary variants kept per URL"});
  c.add({"cache.min_free_disk", "64MiB", "stop writing when the disk has less free space"});
  c.add({"cache.disk_nonblocking_reads", "true",
         "an event loop reads disk-tier objects that are in the page cache itself (preadv2 "
         "RWF_NOWAIT), handing only the rest to the blocking pool"});
  c.add({"cache.disk_meta_memory", "64MiB",
         "memory for the response heads of disk-tier objects, so that a disk hit reads the "
         "store once (0: read them from the store on every hit)"});
  c.add({"cache.disk_body_files", "true",
         "bodies of new disk-tier objects go to segment files beside RocksDB, read with one "
         "pread (false: as chunks inside RocksDB; either kind stays readable)"});
  c.add({"cache.disk_sendfile", "true",
         "a disk-tier body in a body file, checked since the edge started and in the page "
         "cache, is sent with sendfile(2) over plain HTTP/1.1 (false: read and checked on "
         "every hit)"});
  c.add({"cache.expose_key", "false", "add the cache key to Cache-Status"});
  c.add({"cache.stale_on_error", "0s",
         "when the origin fails (unreachable, reset, 500/502/503/504), serve a stored response "
         "this long past expiry if it has no stale-if-error and nothing forbids it (RFC 9111 "
         "4.2.4)"});
  c.add({"cache.stale_if_error_max", "24h", "the most stale-if-error (RFC 5861) may ask for"});
  c.add({"server.loops", "0", "event loops (0: one per core)"});
  c.add({"server.blocking_threads", "2", "threads for disk work"});
  c.add({"server.max_connections", "10000", "client connections at most"});
  c.add({"server.header_limit", "32KiB", "largest request head"});
  c.add({"server.max_header_fields", "100", "most header fields in a request"});
  c.add({"server.body_limit", "16MiB", "largest request body"});
  c.add({"server.header_timeout", "10s", "time to receive a request head"});
  c.add({"server.idle_timeout", "60s", "keep-alive idle time"});
  c.add({"server.body_timeout", "30s", "time for each body write"});
  c.add({"server.http2", "true", "HTTP/2 on tls.listen, negotiated by ALPN (h2, else http/1.1)"});
  c.add({"server.h2c", "false",
         "cleartext HTTP/2 with prior knowledge on listen (next to HTTP/1.1 there)"});
  c.add({"server.h2_max_concurrent_streams", "128",
         "HTTP/2 streams open at once per connection (SETTINGS_MAX_CONCURRENT_STREAMS)"});
  c.add({"server.h2_max_header_list", "32KiB",
         "largest HTTP/2 request header list, as decoded (SETTINGS_MAX_HEADER_LIST_SIZE)"});
  c.add({"server.h2_initial_window", "256KiB",
         "HTTP/2 flow-control window for each request body and for the connection"});
  c.add({"coordinator.address", "",
         "host:port of the coordinator's gRPC listener; several replicas: repeat, separate "
         "with commas, or give one name with several addresses (a headless Service; or "
         "ipv4:a:p,b:p) (empty: standalone, no global purge)",
         true});
  c.add({"coordinator.token", "",
         "this edge's bearer token for the coordinator (a token with the edge scope)"});
  c.add({"coordinator.tls", "false", "TLS to the coordinator"});
  c.add({"coordinator.ca_file", "", "PEM roots for coordinator.tls (default: the system's)"});
  c.add({"coordinator.cert", "",
         "PEM client certificate naming this edge's id, for a coordinator with "
         "grpc_tls.client_ca (mTLS; with coordinator.tls)"});
  c.add({"coordinator.key", "", "PEM private key of coordinator.cert"});
  c.add({"coordinator.edge_id", "", "this edge's stable identity (default: the host name)"});
  c.add({"coordinator.advertise", "", "address shown for this edge (default: listen)"});
  c.add({"coordinator.fenced_policy", "revalidate",
         "when the lease lapses: revalidate (every hit asks the origin) | serve-stale"});
  c.add({"purge.enabled", "false", "answer the PURGE method by forwarding it to the coordinator"});
  c.add({"purge.token", "",
         "optional: a PURGE must also carry this bearer token (the caller's own token is what "
         "the coordinator checks)"});
  c.add({"server.phase_metrics", "true",
         "per-phase histograms of every request (tern_edge_phase_seconds: lookup, origin, "
         "total); off, a request reads no clock for them"});
  c.add({"server.server_timing", "false",
         "a Server-Timing header on every response: lookup, origin and total time in ms"});
  c.add({"server.debug_token", "",
         "requests with \"Tern-Debug: <token>\" get the Server-Timing header (empty: none)"});
  c.add({"log.access", "false",
         "access log: one JSON line per response (time, client, method, host, target, status, "
         "bytes, duration, Cache-Status), written by its own thread"});
  c.add({"log.access_file", "",
         "file the access log is appended to (empty: standard error); "
         "reopened on SIGHUP (log rotation)"});
  c.add({"log.access_sample", "1", "share of responses in the access log, 0 to 1"});
  c.add({"log.level", "info", "debug | info | warn | error"});
  return c;
}

int fail(const Status& s) {
  std::fprintf(stderr, "tern-edge: %s\n", s.toString().c_str());
  return 2;
}

}  // namespace

namespace {

Result<origin::OriginConfig> originsOf(const Config& cfg) {
  origin::OriginConfig origins;
  for (const auto& url : cfg.list("origin")) {
    TERN_ASSIGN_OR_RETURN(auto upstream, origin::parseUpstream(url));
    origins.default_upstreams.push_back(std::move(upstream));
  }
  for (const auto& entry : cfg.list("origin_map")) {
    auto eq = entry.find('=');
    if (eq == std::string::npos)
      return Status::invalidArgument("origin_map: expected host=url: " + entry);
    std::string host = entry.substr(0, eq);
    for (auto& ch : host) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    TERN_ASSIGN_OR_RETURN(auto upstream, origin::parseUpstream(entry.substr(eq + 1)));
    origins.by_host[host].push_back(std::move(upstream));
  }
  if (origins.default_upstreams.empty() && origins.by_host.empty())
    return Status::invalidArgument("no origin configured: use --origin http://host:port");
  TERN_ASSIGN_OR_RETURN(origins.connect_timeout_ms, cfg.durationMs("origin_connect_timeout"));
  TERN_ASSIGN_OR_RETURN(origins.read_timeout_ms, cfg.durationMs("origin_read_timeout"));
  TERN_ASSIGN_OR_RETURN(origins.idle_timeout_ms, cfg.durationMs("origin_idle_timeout"));
  TERN_ASSIGN_OR_RETURN(origins.tls_verify, cfg.boolean("origin_tls_verify"));
  origins.tls_ca_file = cfg.str("origin_ca_file");
  return origins;
}

Result<server::ServerConfig> serverConfigOf(const Config& cfg) {
  server::ServerConfig sc;
  sc.listen = cfg.str("listen");
  sc.admin_listen = cfg.str("admin_listen");
  sc.tls_listen = cfg.str("tls.listen");
  sc.tls_cert = cfg.str("tls.cert");
  sc.tls_key = cfg.str("tls.key");
  TERN_ASSIGN_OR_RETURN(int64_t loops, cfg.integer("server.loops"));
  TERN_ASSIGN_OR_RETURN(int64_t blocking, cfg.integer("server.blocking_threads"));
  TERN_ASSIGN_OR_RETURN(int64_t max_connections, cfg.integer("server.max_connections"));
  TERN_ASSIGN_OR_RETURN(int64_t max_fields, cfg.integer("server.max_header_fields"));
  sc.loops = static_cast<int>(loops);
  sc.blocking_threads = static_cast<int>(blocking);
  sc.max_connections = static_cast<size_t>(max_connections);
  sc.max_header_fields = static_cast<size_t>(max_fields);
  TERN_ASSIGN_OR_RETURN(sc.header_limit_bytes, cfg.bytes("server.header_limit"));
  TERN_ASSIGN_OR_RETURN(sc.body_limit_bytes, cfg.bytes("server.body_limit"));
  TERN_ASSIGN_OR_RETURN(sc.header_timeout_ms, cfg.durationMs("server.header_timeout"));
  TERN_ASSIGN_OR_RETURN(sc.idle_timeout_ms, cfg.durationMs("server.idle_timeout"));
  TERN_ASSIGN_OR_RETURN(sc.body_timeout_ms, cfg.durationMs("server.body_timeout"));
  TERN_ASSIGN_OR_RETURN(sc.access_log, cfg.boolean("log.access"));
  TERN_ASSIGN_OR_RETURN(sc.http2, cfg.boolean("server.http2"));
  TERN_ASSIGN_OR_RETURN(sc.h2c, cfg.boolean("server.h2c"));
  TERN_ASSIGN_OR_RETURN(int64_t streams, cfg.integer("server.h2_max_concurrent_streams"));
  TERN_ASSIGN_OR_RETURN(uint64_t header_list, cfg.bytes("server.h2_max_header_list"));
  TERN_ASSIGN_OR_RETURN(uint64_t window, cfg.bytes("server.h2_initial_window"));
  if (streams < 1 || streams > (1 << 20))
    return Status::invalidArgument("server.h2_max_concurrent_streams: from 1 to 1048576");
  if (header_list < 1024 || header_list > (16u << 20))
    return Status::invalidArgument("server.h2_max_header_list: from 1KiB to 16MiB");
  // RFC 9113 6.5.2: a window is at most 2^31-1 bytes.
  if (window < 1024 || window > 0x7fffffffu)
    return Status::invalidArgument("server.h2_initial_window: from 1KiB to 2GiB-1");
  sc.h2_max_concurrent_streams = static_cast<uint32_t>(streams);
  sc.h2_max_header_list_bytes = static_cast<uint32_t>(header_list);
  sc.h2_initial_window_bytes = static_cast<uint32_t>(window);
  return sc;
}

Result<double> parseShare(const std::string& text) {
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !(v >= 0 && v <= 1))
    return Status::invalidArgument("log.access_sample: a share from 0 to 1, not '" + text + "'");
  return v;
}

// What SIGHUP may change without a restart: the origins, the server's
// limits and timeouts, and logging. Everything else is reported and kept.
bool reloadable(const std::string& key) {
  static const std::set<std::string> kKeys = {"config",
                                              "origin",
                                              "origin_map",
                                              "origin_connect_timeout",
                                              "origin_read_timeout",
                                              "origin_idle_timeout",
                                              "server.max_connections",
                                              "server.header_limit",
                                              "server.body_limit",
                                              "server.max_header_fields",
                                              "server.header_timeout",
                                              "server.idle_timeout",
                                              "server.body_timeout",
                                              "log.level",
                                              "log.access",
                                              "log.access_sample"};
  return kKeys.contains(key);
}

// Re-reads the configuration (file, environment, flags) and applies what
// may change while running. An error leaves everything as it was.
void reload(int argc, char** argv, Config* running, server::EdgeServer* server,
            server::AccessLog* access) {
  Config next = makeConfig();
  Status loaded = next.load(argc, argv);
  log::Level level = log::level();
  auto origins = loaded.isOk() ? originsOf(next) : Result<origin::OriginConfig>(loaded);
  auto settings =
      origins.ok() ? serverConfigOf(next) : Result<server::ServerConfig>(origins.status());
  if (settings.ok() && !log::parseLevel(next.str("log.level"), &level))
    settings = Status::invalidArgument("log.level: unknown level");
  if (settings.ok() && !parseShare(next.str("log.access_sample")).ok())
    settings = parseShare(next.str("log.access_sample")).status();
  if (!settings.ok()) {
    TERN_LOG(kError, "configuration not reloaded, the running one stays",
             {{"error", settings.status().toString()}});
    return;
  }
  std::string changed, kept;
  for (const auto& key : running->keys()) {
    if (running->list(key) == next.list(key)) continue;
    std::string& to = reloadable(key) ? changed : kept;
    to += (to.empty() ? "" : " ") + key;
  }
  if (!kept.empty())
    TERN_LOG(kWarn, "configuration changes that need a restart were not applied", {{"keys", kept}});
  double sample = 1;
  if (auto v = parseShare(next.str("log.access_sample")); v.ok()) sample = *v;
  server->reload(*settings, *origins);
  access->setSample(sample);
  if (Status s = access->reopen(); !s.isOk())
    TERN_LOG(kError, "access log not reopened", {{"error", s.toString()}});
  log::setLevel(level);
  // What runs now is the old configuration with the reloadable keys of the
  // new one: the next reload compares against that.
  for (const auto& key : running->keys())
    if (reloadable(key)) running->set(key, next.list(key));
  TERN_LOG(kInfo, "configuration reloaded", {{"changed", changed.empty() ? "nothing" : changed}});
}

// Raises this process's limit of open descriptors to the most it may have
// (as nginx's worker_rlimit_nofile or Go's runtime do: the soft limit of a
// shell is often 1,024, too few for a busy edge); returns the limit now.
uint64_t openFileLimit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return 1024;
  if (lim.rlim_cur < lim.rlim_max) {
    rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  return lim.rlim_cur == RLIM_INFINITY ? 1u << 20 : static_cast<uint64_t>(lim.rlim_cur);
}

// The most memory mappings this process may have (vm.max_map_count).
uint64_t mapCountLimit() {
  std::ifstream f("/proc/sys/vm/max_map_count");
  uint64_t n = 0;
  return (f >> n) && n > 0 ? n : 65530;
}

}  // namespace

int main(int argc, char** argv) {
  // Before any thread exists, so that every thread inherits the mask: the
  // signals are taken by sigwait below, never by a default action.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  tern::tuneGrpcRuntime();
  Config cfg = makeConfig();
  bool help = false;
  if (Status s = cfg.load(argc, argv, &help); !s.isOk()) return fail(s);
  if (help) {
    std::cout << cfg.usage();
    return 0;
  }
  log::Level level;
  if (!log::parseLevel(cfg.str("log.level"), &level))
    return fail(Status::invalidArgument("log.level: unknown level"));
  log::setLevel(level);

  auto get = [&](auto r) {
    if (!r.ok()) {
      fail(r.status());
      std::exit(2);
    }
    return *r;
  };

  origin::OriginConfig origins = get(originsOf(cfg));

  storage::RocksStoreOptions disk;
  disk.path = cfg.str("cache.dir");
  disk.budget_bytes = get(cfg.bytes("cache.disk_budget"));
  disk.max_object_bytes = get(cfg.bytes("cache.max_object_size"));
  disk.max_variants_per_url = static_cast<size_t>(get(cfg.integer("cache.max_variants")));
  disk.min_free_disk_bytes = get(cfg.bytes("cache.min_free_disk"));
  disk.nonblocking_reads = get(cfg.boolean("cache.disk_nonblocking_reads"));
  disk.meta_cache_bytes = get(cfg.bytes("cache.disk_meta_memory"));
  disk.body_files = get(cfg.boolean("cache.disk_body_files"));
  disk.send_body_files = get(cfg.boolean("cache.disk_sendfile"));
  // Raised before the store opens: it keeps its body files open.
  const uint64_t open_files = openFileLimit();
  auto rocks = storage::RocksStore::open(disk);
  if (!rocks.ok()) return fail(rocks.status());

  storage::MemoryStoreOptions mem;
  mem.budget_bytes = get(cfg.bytes("cache.memory_budget"));
  mem.max_object_bytes = get(cfg.bytes("cache.memory_max_object_size"));
  mem.max_variants_per_url = disk.max_variants_per_url;
  mem.file_body_bytes = get(cfg.bytes("cache.sendfile_min_size"));
  // Each such file is a descriptor and a mapping: a quarter of either limit
  // at most, the rest for connections, origin connections, RocksDB and the
  // heap's own mappings.
  mem.max_file_bodies = static_cast<size_t>(std::min(open_files, mapCountLimit()) / 4);
  cache::TieredStore store(std::make_unique<storage::MemoryStore>(mem), std::move(*rocks),
                           mem.max_object_bytes);

  metrics::Registry registry;
  registry.callbackGauge(
      "tern_edge_store_bytes", "Bytes in the cache",
      [&] { return static_cast<double>(store.diskStats().bytes); }, "tier=\"disk\"");
  registry.callbackGauge(
      "tern_edge_store_bytes", "Bytes in the cache",
      [&] { return static_cast<double>(store.memoryStats().bytes); }, "tier=\"memory\"");
  registry.callbackGauge(
      "tern_edge_store_objects", "Objects in the cache",
      [&] { return static_cast<double>(store.diskStats().objects); }, "tier=\"disk\"");
  registry.callbackGauge(
      "tern_edge_store_objects", "Objects in the cache",
      [&] { return static_cast<double>(store.memoryStats().objects); }, "tier=\"memory\"");
  registry.callbackGauge(
      "tern_edge_store_evictions", "Objects evicted since start",
      [&] { return static_cast<double>(store.diskStats().evictions); }, "tier=\"disk\"");
  registry.callbackGauge(
      "tern_edge_store_evictions", "Objects evicted since start",
      [&] { return static_cast<double>(store.memoryStats().evictions); }, "tier=\"memory\"");
  registry.callbackGauge(
      "tern_edge_store_promotions", "Disk hits since start, by whether the memory tier took a copy",
      [&] { return static_cast<double>(store.promotions()); }, "result=\"promoted\"");
  registry.callbackGauge(
      "tern_edge_store_promotions", "Disk hits since start, by whether the memory tier took a copy",
      [&] { return static_cast<double>(store.promotionsDeclined()); }, "result=\"declined\"");
  registry.callbackGauge(
      "tern_edge_store_write_failures", "Writes the disk tier's storage refused since start",
      [&] { return static_cast<double>(store.diskStats().write_failures); }, "tier=\"disk\"");
  registry.callbackGauge(
      "tern_edge_store_budget_bytes", "Byte budget of the cache",
      [&] { return static_cast<double>(store.diskStats().budget_bytes); }, "tier=\"disk\"");
  registry.callbackGauge(
      "tern_edge_disk_meta_cache_lookups",
      "Disk-tier lookups since start, by whether the "
      "object's metadata was kept in memory (hit) or read from the store (miss)",
      [&] { return static_cast<double>(store.diskStats().meta_cache_hits); }, "result=\"hit\"");
  registry.callbackGauge(
      "tern_edge_disk_meta_cache_lookups",
      "Disk-tier lookups since start, by whether the "
      "object's metadata was kept in memory (hit) or read from the store (miss)",
      [&] { return static_cast<double>(store.diskStats().meta_cache_misses); }, "result=\"miss\"");
  registry.callbackGauge("tern_edge_disk_meta_cache_bytes",
                         "Memory held by the metadata of disk objects kept in memory",
                         [&] { return static_cast<double>(store.diskStats().meta_cache_bytes); });
  registry.callbackGauge("tern_edge_disk_body_files",
                         "Segment files holding the bodies of disk objects",
                         [&] { return static_cast<double>(store.diskStats().body_files); });
  registry.callbackGauge(
      "tern_edge_disk_body_file_bytes",
      "Disk space held by the body files (space of removed bodies is given back at once)",
      [&] { return static_cast<double>(store.diskStats().body_file_bytes); });
  registry.callbackGauge("tern_edge_applied_purge_seq", "Highest purge sequence applied",
                         [&] { return static_cast<double>(store.appliedSeq()); });

  server::ServerConfig sc = get(serverConfigOf(cfg));

  cache::FlowConfig flow;
  flow.expose_cache_key = get(cfg.boolean("cache.expose_key"));
  flow.max_object_bytes = disk.max_object_bytes;
  flow.server_timing = get(cfg.boolean("server.server_timing"));
  flow.phase_metrics = get(cfg.boolean("server.phase_metrics"));
  flow.debug_token = cfg.str("server.debug_token");
  flow.policy.stale_on_error_ms = get(cfg.durationMs("cache.stale_on_error"));
  flow.policy.stale_if_error_max_ms = get(cfg.durationMs("cache.stale_if_error_max"));

  // The purge agent (when a coordinator is configured): fenced until it has
  // caught up with the coordinator's log.
  cache::LeaseGate lease_gate(cache::LeaseGate::kForever);
  std::unique_ptr<agent::PurgeAgent> purge_agent;
  const std::string fenced_policy = cfg.str("coordinator.fenced_policy");
  if (fenced_policy != "revalidate" && fenced_policy != "serve-stale")
    return fail(Status::invalidArgument("coordinator.fenced_policy: revalidate or serve-stale"));
  std::vector<std::string> coordinators;
  for (const auto& v : cfg.list("coordinator.address")) {
    // "ipv4:a:1,b:2" (or ipv6:) is one gRPC target with several addresses,
    // like a DNS name with several records: one channel, round robin.
    if (v.starts_with("ipv4:") || v.starts_with("ipv6:")) {
      coordinators.push_back(v);
      continue;
    }
    for (size_t i = 0; i <= v.size();) {
      size_t j = std::min(v.find(',', i), v.size());
      std::string a = v.substr(i, j - i);
      std::erase_if(a, [](char ch) { return ch == ' ' || ch == '\t'; });
      if (!a.empty()) coordinators.push_back(a);
      i = j + 1;
    }
  }
  if (!coordinators.empty()) {
    agent::AgentOptions ao;
    ao.coordinators = coordinators;
    ao.token = cfg.str("coordinator.token");
    ao.tls = get(cfg.boolean("coordinator.tls"));
    ao.ca_file = cfg.str("coordinator.ca_file");
    ao.cert_file = cfg.str("coordinator.cert");
    ao.key_file = cfg.str("coordinator.key");
    if ((!ao.cert_file.empty() || !ao.key_file.empty()) && !ao.tls)
      return fail(Status::invalidArgument("coordinator.cert needs coordinator.tls"));
    ao.edge_id = cfg.str("coordinator.edge_id");
    if (ao.edge_id.empty()) {
      char host[256] = {};
      gethostname(host, sizeof host - 1);
      ao.edge_id = host;
    }
    lease_gate.openUntil(0);
    flow.lease = &lease_gate;
    flow.serve_stale_when_fenced = fenced_policy == "serve-stale";
    purge_agent = std::make_unique<agent::PurgeAgent>(ao, &store, &lease_gate, &registry);
  }
  if (get(cfg.boolean("purge.enabled"))) {
    if (!purge_agent)
      return fail(
          Status::invalidArgument("purge.enabled needs coordinator.address: a PURGE is global"));
    // A PURGE is forwarded with the caller's own bearer token, which the
    // coordinator checks and scopes; one without a token is refused here.
    flow.purge_token = cfg.str("purge.token");
    flow.purge_forwarder = [a = purge_agent.get()](cache::PurgeForward f,
                                                   std::function<void(int, std::string)> done) {
      a->forwardPurge(std::move(f), std::move(done));
    };
  }

  if (purge_agent) {
    flow.group_invalidator = [a = purge_agent.get()](std::vector<std::string> groups) {
      cache::PurgeForward f;
      f.mode = storage::PurgeMode::kSoft;
      for (auto& g : groups) f.selectors.push_back({storage::SelectorKind::kTag, std::move(g)});
      a->forwardPurge(std::move(f), [](int status, std::string body) {
        if (status >= 300)
          TERN_LOG(kWarn, "Cache-Group-Invalidation not forwarded",
                   {{"status", std::to_string(status)}, {"body", body}});
      });
    };
  } else {
    flow.group_invalidator = [&store](std::vector<std::string> groups) {
      storage::PurgeSpec spec;
      spec.mode = storage::PurgeMode::kSoft;
      for (auto& g : groups) {
        if (storage::isValidTag(g))
          spec.selectors.push_back({storage::SelectorKind::kTag, std::move(g)});
      }
      if (spec.selectors.empty()) return;
      if (Status s = store.applyLocal(std::move(spec)); !s.isOk())
        TERN_LOG(kWarn, "Cache-Group-Invalidation failed", {{"error", s.toString()}});
    };
  }

  admin::AdminState admin_state;
  admin_state.registry = &registry;
  admin_state.ready = [a = purge_agent.get()](std::string* why) { return !a || a->ready(why); };

  signal(SIGPIPE, SIG_IGN);

  server::AccessLogOptions alo;
  alo.path = cfg.str("log.access_file");
  alo.sample = get(parseShare(cfg.str("log.access_sample")));
  auto opened_log = server::AccessLog::open(alo, &registry);
  if (!opened_log.ok()) return fail(opened_log.status());
  std::unique_ptr<server::AccessLog> access_log = std::move(*opened_log);
  server::EdgeServer server(sc, origins, &store, flow, &registry, admin_state, access_log.get());
  if (Status s = server.start(); !s.isOk()) return fail(s);
  if (purge_agent) {
    std::string advertise = cfg.str("coordinator.advertise");
    if (advertise.empty())
      advertise = sc.listen.substr(0, sc.listen.rfind(':')) + ":" + std::to_string(server.port());
    if (Status s = purge_agent->start(advertise); !s.isOk()) return fail(s);
  }
  std::printf("tern-edge listening on port %d (admin %d) (tls %d)\n", server.port(),
              server.adminPort(), server.tlsPort());
  std::fflush(stdout);

  int sig = 0;
  for (;;) {
    sigwait(&signals, &sig);
    if (sig != SIGHUP) break;
    reload(argc, argv, &cfg, &server, access_log.get());
  }
  TERN_LOG(kInfo, "stopping", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
  server.stop(10000);
  if (purge_agent) purge_agent->stop();
  TERN_LOG(kInfo, "stopped");
  return 0;
}
