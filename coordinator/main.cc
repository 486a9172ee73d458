// tern-coordinator: wiring only. Opens the purge log, starts the engine, the
// gRPC services (purge API + edge link) and the HTTP/JSON API, and waits for
// SIGTERM/SIGINT.

#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>

#include "common/config.h"
#include "common/log.h"
#include "coordinator/api/proto_views.h"
#include "coordinator/etcd/etcd_client.h"
#include "coordinator/etcd/etcd_health.h"
#include "coordinator/etcd/etcd_purge_log.h"
#include "coordinator/etcd/replica_session.h"
#include "coordinator/log/rocks_purge_log.h"
#include "coordinator/server/grpc_service.h"
#include "coordinator/server/http_server.h"
#include "coordinator/server/replica_link.h"
#include "proto/grpc_runtime.h"

using namespace tern;
using namespace tern::coordinator;

namespace {

Config makeConfig() {
  Config c("tern-coordinator", "TERN_COORDINATOR_");
  c.add({"listen", "127.0.0.1:8470", "HTTP/JSON API, status page and /metrics (port 0: any)"});
  c.add({"http_tls.cert", "",
         "PEM certificate chain: the HTTP listener (API, status page, /metrics) speaks HTTPS"});
  c.add({"http_tls.key", "", "PEM private key of http_tls.cert"});
  c.add({"grpc_listen", "127.0.0.1:8471", "gRPC purge API and edge link (port 0: any)"});
  c.add({"grpc_tls.cert", "", "PEM certificate chain for the gRPC listener (empty: plaintext)"});
  c.add({"grpc_tls.key", "", "PEM private key for the gRPC listener"});
  c.add({"grpc_tls.client_ca", "",
         "PEM roots that sign edges' client certificates: edges then join the edge link by "
         "certificate (mTLS), its common name or a subject alternative name being the edge id"});
  c.add({"data_dir", "./data/coordinator", "folder of the durable purge log (without etcd)"});
  c.add({"etcd.endpoints", "",
         "etcd members host:port (comma-separated or repeated): run as one of several replicas "
         "sharing the log in etcd (empty: one process, log in data_dir)",
         true});
  c.add({"etcd.prefix", "/tern/", "key prefix of this cluster in etcd"});
  c.add({"etcd.timeout", "2s", "etcd request timeout per member"});
  c.add({"etcd.summary_interval", "50ms",
         "least time between two puts of this replica's summary to etcd (wait=all does not "
         "wait for them: progress also goes straight to the other replicas)"});
  c.add({"etcd.session_ttl", "5s",
         "etcd session of this replica: cut off from etcd this long, its edges are fenced and "
         "move to other replicas"});
  c.add({"replica.id", "", "name of this replica (default: host name and a random suffix)"});
  c.add({"replica.progress_interval", "2ms",
         "least time between two progress messages to another replica (acknowledgements "
         "meanwhile go out together; 0: one message per acknowledgement burst)"});
  c.add({"replica.ca_file", "",
         "PEM roots to verify other replicas' gRPC certificates (with grpc_tls; empty: the "
         "system's)"});
  c.add({"replica.address", "",
         "gRPC address other replicas dial to reach this one, also shown to operators "
         "(default: from grpc_listen; set it when that is a wildcard such as 0.0.0.0)"});
  c.add({"lease", "3s", "edge lease: an edge silent this long is fenced"});
  c.add({"wait_timeout", "10s", "default wait of a purge with wait=all"});
  c.add({"max_wait_timeout", "120s", "longest wait a purge may ask for"});
  c.add({"retire_after", "24h", "forget edges disconnected this long"});
  c.add({"log_retain_count", "1000000", "purges kept in the log (older: edges soft-purge all)"});
  c.add({"log_retain_age", "168h", "age after which purges leave the log"});
  c.add({"rate.purges_per_sec", "2000", "purge calls per second (0: unlimited); above: 429"});
  c.add({"rate.burst", "4000", "purge calls allowed in a burst"});
  c.add({"auth.token", "",
         "full-access bearer token: purge, read, edge link, replica link (repeatable)", true});
  c.add({"auth.token_file", "", "file with one full-access token per line"});
  c.add({"auth.tokens_file", "",
         "YAML file of named tokens with scopes (purge, hosts, read, edge, replica), stored as "
         "SHA-256 digests; re-read on SIGHUP (see docs/operations.md)"});
  c.add({"auth.replica_token", "",
         "token this replica presents to the other replicas (replica scope; default: the first "
         "auth.token)"});
  c.add({"auth.protect_status", "false",
         "the status page and /metrics need a token with the read scope too"});
  c.add({"http.threads", "2", "threads of the HTTP listener"});
  c.add({"http.max_connections", "1024",
         "open HTTP connections at most (more are closed as they arrive)"});
  c.add({"max_waiting_purges", "10000",
         "purge calls with wait=all held at once (more get 429 / RESOURCE_EXHAUSTED)"});
  c.add({"log.level", "info", "debug | info | warn | error"});
  return c;
}

int fail(const Status& s) {
  std::fprintf(stderr, "tern-coordinator: %s\n", s.toString().c_str());
  return 2;
}

Result<std::string> readFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::invalidArgument("cannot read " + path);
  return std::string(std::istreambuf_iterator<char>(in), {});
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

  AccessSources access_sources{cfg.list("auth.token"), cfg.str("auth.token_file"),
                               cfg.str("auth.tokens_file")};
  Access access(get(loadAccessPolicy(access_sources)));
  if (access.open())
    TERN_LOG(kWarn,
             "no auth.token or auth.tokens_file configured: the purge APIs are open to "
             "anyone who can connect");
  const bool edge_mtls = !cfg.str("grpc_tls.client_ca").empty();
  if (edge_mtls && cfg.str("grpc_tls.cert").empty())
    return fail(Status::invalidArgument("grpc_tls.client_ca needs grpc_tls.cert and grpc_tls.key"));

  PurgeLogOptions lo;
  lo.path = cfg.str("data_dir");
  lo.retain_count = static_cast<uint64_t>(get(cfg.integer("log_retain_count")));
  lo.retain_age_ms = get(cfg.durationMs("log_retain_age"));
  std::vector<std::string> endpoints;
  for (const auto& v : cfg.list("etcd.endpoints"))
    for (size_t pos = 0; pos <= v.size();) {
      size_t comma = v.find(',', pos);
      if (comma == std::string::npos) comma = v.size();
      if (comma > pos) endpoints.push_back(v.substr(pos, comma - pos));
      pos = comma + 1;
    }
  std::unique_ptr<etcd::EtcdClient> etcd_client;
  std::unique_ptr<PurgeLog> log;
  etcd::EtcdPurgeLog* etcd_log = nullptr;
  std::string replica_id = cfg.str("replica.id");
  if (!endpoints.empty()) {
    if (replica_id.empty()) {
      char host[256] = {};
      gethostname(host, sizeof(host) - 1);
      std::random_device rd;
      char suffix[16];
      std::snprintf(suffix, sizeof(suffix), "-%06x", rd() & 0xffffff);
      replica_id = std::string(host) + suffix;
    }
    etcd::EtcdOptions eo;
    eo.endpoints = endpoints;
    eo.timeout_ms = static_cast<uint32_t>(get(cfg.durationMs("etcd.timeout")));
    etcd_client = std::make_unique<etcd::EtcdClient>(eo);
    etcd::EtcdLogOptions elo;
    elo.log = lo;
    elo.prefix = cfg.str("etcd.prefix");
    elo.replica_id = replica_id;
    auto opened = etcd::EtcdPurgeLog::open(etcd_client.get(), elo);
    if (!opened.ok()) return fail(opened.status());
    etcd_log = opened->get();
    log = std::move(*opened);
  } else {
    std::error_code ec;
    std::filesystem::create_directories(lo.path, ec);
    auto opened = RocksPurgeLog::open(lo);
    if (!opened.ok()) return fail(opened.status());
    log = std::move(*opened);
  }

  CoordinatorOptions co;
  co.lease_ms = static_cast<uint32_t>(get(cfg.durationMs("lease")));
  co.default_wait_timeout_ms = static_cast<uint32_t>(get(cfg.durationMs("wait_timeout")));
  co.max_wait_timeout_ms = static_cast<uint32_t>(get(cfg.durationMs("max_wait_timeout")));
  co.retire_after_ms = get(cfg.durationMs("retire_after"));
  co.max_waiting_calls = static_cast<size_t>(get(cfg.integer("max_waiting_purges")));
  co.rate_per_sec = static_cast<double>(get(cfg.integer("rate.purges_per_sec")));
  co.rate_burst = static_cast<double>(get(cfg.integer("rate.burst")));
  if (co.lease_ms < 100) return fail(Status::invalidArgument("lease must be at least 100ms"));

  metrics::Registry registry;
  Coordinator coordinator(log.get(), co, &registry);
  std::unique_ptr<etcd::EtcdHealth> etcd_health;
  std::unique_ptr<etcd::ReplicaSession> session;
  std::atomic<etcd::ReplicaSession*> session_ptr{nullptr};  // for the engine's threads
  if (etcd_log) {
    // Before the session's threads call into the engine. Until the
    // session is open no lease can be granted.
    Replication rep;
    rep.replica_id = replica_id;
    rep.lease_limit_us = [&session_ptr] {
      auto* s = session_ptr.load();
      return s ? s->validUntilUs() : 0;
    };
    rep.summary_changed = [&session_ptr] {
      if (auto* s = session_ptr.load()) s->changed();
    };
    rep.announced_head = [etcd_log] { return etcd_log->announcedHead(); };
    etcd_health = std::make_unique<etcd::EtcdHealth>(etcd_client.get(), &registry);
    rep.etcd_members = [h = etcd_health.get()] { return h->members(); };
    coordinator.enableReplication(std::move(rep));
    etcd::SessionOptions so;
    so.key_prefix = etcd_log->replicaPrefix() + replica_id + "/";
    so.ttl_s = std::max<int64_t>(2, get(cfg.durationMs("etcd.session_ttl")) / 1000);
    so.min_interval_ms = static_cast<uint32_t>(
        std::clamp<int64_t>(get(cfg.durationMs("etcd.summary_interval")), 1, 10'000));
    auto opened = etcd::ReplicaSession::open(
        etcd_client.get(), so,
        [&coordinator](uint64_t* generation) {
          return toProto(coordinator.summary(generation)).SerializeAsString();
        },
        [&coordinator](uint64_t generation) { coordinator.summaryPublished(generation); },
        [etcd_log] { return etcd_log->watchedRevision(); });
    if (!opened.ok()) return fail(opened.status());
    session = std::move(*opened);
    session_ptr = session.get();
  }
  if (Status s = coordinator.start(); !s.isOk()) return fail(s);
  // Purges logged through other replicas reach this one's edges.
  if (etcd_log) {
    // The other replicas' edges first, then the log (see Coordinator).
    Status s = etcd_log->setOnReplica(
        [&coordinator, s = session.get(), prefix = etcd_log->replicaPrefix()](
            const std::string& id, const std::string* value, int64_t revision) {
          if (s->isOwn(prefix + id)) return;
          if (value == nullptr) return coordinator.replicaSummary(id, nullptr, revision);
          tern::internal::v1::ReplicaSummary summary;
          if (!summary.ParseFromString(*value)) {
            TERN_LOG(kWarn, "replica summary does not parse", {{"replica", id}});
            return;
          }
          const ReplicaSummary plain = fromProto(summary);
          coordinator.replicaSummary(id, &plain, revision);
        });
    if (!s.isOk()) return fail(s);
    etcd_log->setOnHead([&coordinator](uint64_t head) { coordinator.learnHead(head); });
    coordinator.learnHead(etcd_log->headSeq());
  }

  HttpApi api(&coordinator, &access, &registry, get(cfg.boolean("auth.protect_status")));
  HttpServerOptions ho;
  ho.listen = cfg.str("listen");
  ho.threads = static_cast<int>(get(cfg.integer("http.threads")));
  ho.max_connections = static_cast<size_t>(get(cfg.integer("http.max_connections")));
  ho.tls_cert = cfg.str("http_tls.cert");
  ho.tls_key = cfg.str("http_tls.key");
  if (ho.tls_cert.empty() != ho.tls_key.empty())
    return fail(Status::invalidArgument("http_tls.cert and http_tls.key go together"));
  HttpServer http(ho, &api);
  if (Status s = http.start(); !s.isOk()) return fail(s);

  PurgeServiceImpl purge_service(&coordinator, &access);
  EdgeLinkImpl edge_link(&coordinator, &access, edge_mtls);
  grpc::ServerBuilder builder;
  std::shared_ptr<grpc::ServerCredentials> creds = grpc::InsecureServerCredentials();
  if (!cfg.str("grpc_tls.cert").empty()) {
    grpc::SslServerCredentialsOptions so;
    so.pem_key_cert_pairs.push_back(
        {get(readFile(cfg.str("grpc_tls.key"))), get(readFile(cfg.str("grpc_tls.cert")))});
    if (edge_mtls) {
      // Asked for and verified when given; the edge link insists on one,
      // the purge API and ternctl go on with bearer tokens.
      so.pem_root_certs = get(readFile(cfg.str("grpc_tls.client_ca")));
      so.client_certificate_request = GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY;
    }
    creds = grpc::SslServerCredentials(so);
  }
  int grpc_port = 0;
  builder.AddListeningPort(cfg.str("grpc_listen"), creds, &grpc_port);
  builder.RegisterService(&purge_service);
  builder.RegisterService(&edge_link);
  ReplicaLinkImpl replica_link(
      &coordinator, &access,
      static_cast<uint32_t>(
          std::clamp<int64_t>(get(cfg.durationMs("replica.progress_interval")), 0, 1000) * 1000));
  if (etcd_log) builder.RegisterService(&replica_link);
  // Detect dead edge connections even when nothing is being sent.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 1000);
  setEdgeLinkFlowControl(&builder);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.SetMaxReceiveMessageSize(32 << 20);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || grpc_port == 0)
    return fail(Status::ioError("cannot listen for gRPC on " + cfg.str("grpc_listen")));
  {
    const std::string listen = cfg.str("grpc_listen");
    const std::string advertised = cfg.str("replica.address");
    coordinator.setReplicaAddress(!advertised.empty() ? advertised
                                                      : listen.substr(0, listen.rfind(':') + 1) +
                                                            std::to_string(grpc_port));
    if (session) session->changed();
  }

  // Progress straight from the other replicas (wait=all without a second
  // round through etcd), once their summaries name their addresses.
  std::unique_ptr<PeerLinks> peer_links;
  if (etcd_log) {
    PeerLinkOptions po;
    po.replica_id = replica_id;
    po.token = cfg.str("auth.replica_token");
    if (po.token.empty()) po.token = access.current()->firstFullToken();
    if (po.token.empty() && !access.open())
      TERN_LOG(kWarn,
               "no auth.replica_token: progress goes to the other replicas through etcd only "
               "(wait=all is slower)");
    if (cfg.str("grpc_tls.cert").empty()) {
      po.credentials = grpc::InsecureChannelCredentials();
    } else {
      grpc::SslCredentialsOptions so;
      if (!cfg.str("replica.ca_file").empty())
        so.pem_root_certs = get(readFile(cfg.str("replica.ca_file")));
      po.credentials = grpc::SslCredentials(so);
    }
    peer_links = std::make_unique<PeerLinks>(&coordinator, std::move(po));
    registry.callbackGauge("tern_coordinator_replica_progress_received",
                           "progress messages received straight from other replicas",
                           [p = peer_links.get()] { return static_cast<double>(p->received()); });
  }

  signal(SIGPIPE, SIG_IGN);

  std::printf("tern-coordinator listening on port %d (grpc %d)\n", http.port(), grpc_port);
  std::fflush(stdout);
  TERN_LOG(kInfo, "coordinator listening",
           {{"http", std::to_string(http.port())},
            {"grpc", std::to_string(grpc_port)},
            {"log", etcd_log ? "etcd" : "rocksdb"},
            {"replica", replica_id}});

  int sig = 0;
  for (;;) {
    sigwait(&signals, &sig);
    if (sig != SIGHUP) break;
    // Credentials are re-read whole; a file that does not load leaves the
    // ones in force. Streams and calls in flight are not touched.
    auto reloaded = loadAccessPolicy(access_sources);
    if (!reloaded.ok()) {
      TERN_LOG(kError, "credentials not reloaded, the previous ones stay in force",
               {{"error", reloaded.status().toString()}});
      continue;
    }
    access.replace(*reloaded);
    TERN_LOG(kInfo, "credentials reloaded", {{"credentials", std::to_string((*reloaded)->size())}});
  }
  TERN_LOG(kInfo, "stopping", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
  coordinator.stop();  // answers waiting purge calls
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  http.stop();
  peer_links.reset();  // (after the last /metrics render)
  session_ptr = nullptr;
  session.reset();
  if (etcd_log) {
    etcd_log->setOnHead({});
    (void)etcd_log->setOnReplica({});
  }
  log.reset();  // its threads call into the engine
  TERN_LOG(kInfo, "stopped");
  return 0;
}
