#pragma once
// EdgeServer: the HTTP/1.1 and HTTP/2 front of tern-edge on Boost.Asio
// (HTTP/1.1 parsed by Boost.Beast, HTTP/2 framed by nghttp2: H2Connection).
//
// A fixed set of event loops (one io_context and thread each, sized to the
// cores); each loop accepts on its own SO_REUSEPORT socket and owns its
// connections, its origin client and its request flow, so that nothing on
// the hit path is shared between loops. A separate small pool runs blocking
// work (disk lookups and writes). Sessions: keep-alive, pipelined requests
// answered in order, a header and a body limit and a timeout on every read,
// a connection limit, graceful stop (stop accepting, finish in-flight).
//
// Thread-safety: start() and stop() from the owning thread.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/result.h"
#include "edge/admin/admin.h"
#include "edge/cache/request_flow.h"
#include "edge/origin/beast_origin_client.h"
#include "edge/server/access_log.h"

namespace tern::edge::server {

struct ServerConfig {
  std::string listen = "127.0.0.1:8080";  // host:port; port 0 picks a free one
  std::string admin_listen = "127.0.0.1:9080";
  std::string tls_listen;  // empty: no TLS listener
  std::string tls_cert;    // PEM certificate chain
  std::string tls_key;     // PEM private key
  int loops = 0;           // 0: one per core
  int blocking_threads = 2;
  size_t max_connections = 10000;
  size_t header_limit_bytes = 32 * 1024;
  size_t max_header_fields = 100;
  uint64_t body_limit_bytes = 16ULL << 20;
  int64_t header_timeout_ms = 10000;  // to receive a request head
  int64_t idle_timeout_ms = 60000;    // keep-alive between requests
  bool access_log = false;            // the access log on (when one is given)
  int64_t body_timeout_ms = 30000;    // to send or receive a body
  // HTTP/2: negotiated by ALPN on the TLS listener (`http2`), and with prior
  // knowledge on the plain listener (`h2c`).
  bool http2 = true;
  bool h2c = false;
  uint32_t h2_max_concurrent_streams = 128;
  uint32_t h2_max_header_list_bytes = 32 * 1024;
  uint32_t h2_initial_window_bytes = 256 * 1024;
};

class EdgeServer {
 public:
  // `access_log` (optional) outlives the server.
  EdgeServer(ServerConfig config, origin::OriginConfig origins, cache::TieredStore* store,
             cache::FlowConfig flow, metrics::Registry* registry, admin::AdminState admin,
             AccessLog* access_log = nullptr);
  ~EdgeServer();

  // Binds and starts serving. Returns the bound ports through the getters.
  Status start();
  // Stops accepting, lets in-flight requests finish (at most `grace_ms`),
  // then stops the loops.
  void stop(int64_t grace_ms = 10000);
  // Blocks until stop() finished.
  void wait();

  // Configuration reload: the limits, timeouts and access_log of `settings`
  // (listeners, TLS and threads stay as started) and the origins take
  // effect for what starts from now on; open connections and the cache are
  // kept. Thread-safe.
  void reload(const ServerConfig& settings, const origin::OriginConfig& origins);

  int port() const;
  int adminPort() const;
  int tlsPort() const;  // 0 without TLS

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace tern::edge::server
