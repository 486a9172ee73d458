#pragma once
// BeastOriginClient: the OriginClient of one event loop, on Boost.Beast.
// Keeps idle keep-alive connections per upstream address (closed after
// idle_timeout_ms, below the keep-alive timeouts origins commonly use, and
// checked for a close by the origin before each reuse), connects with a
// timeout, bounds every read with a timeout, and retries an idempotent
// request once on a fresh connection when a reused one fails before any
// response byte arrived. Non-idempotent requests are never retried.
//
// Thread-safety: one instance per event loop; call fetch() on that loop.

#include <boost/asio/io_context.hpp>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "edge/origin/origin_client.h"

namespace tern::edge::origin {

struct Upstream {
  std::string host;  // address or name
  std::string port;
  bool tls = false;  // https: TLS with SNI and, by default, certificate verification
};

struct OriginConfig {
  std::vector<Upstream> default_upstreams;               // for any Host not below
  std::map<std::string, std::vector<Upstream>> by_host;  // Host (lower-case) -> upstreams
  int64_t connect_timeout_ms = 3000;
  int64_t read_timeout_ms = 30000;
  size_t max_idle_per_upstream = 64;
  // An idle pooled connection is closed after this long (origins commonly
  // close theirs after 5 s or more; sending on one they just closed loses
  // the request).
  int64_t idle_timeout_ms = 4000;
  bool tls_verify = true;   // verify origin certificates and host names
  std::string tls_ca_file;  // PEM bundle; empty: the system's CA store
};

// RFC 9110 9.2.2: methods that may be sent again after a failure.
bool isIdempotent(std::string_view method);

// Parses "http://host[:port]" or "https://host[:port]" into an upstream.
Result<Upstream> parseUpstream(const std::string& url);

class BeastOriginClient final : public OriginClient {
 public:
  BeastOriginClient(boost::asio::io_context& ioc, const OriginConfig& config);
  ~BeastOriginClient() override;
  void fetch(OriginRequest request, Callbacks callbacks) override;
  // New upstreams and timeouts for the fetches that start from now on
  // (configuration reload); fetches under way keep theirs, and pooled
  // connections to upstreams that are gone close as they idle out. The TLS
  // settings (tls_verify, tls_ca_file) stay as they were.
  // REQUIRES: on this client's io_context thread.
  void reconfigure(const OriginConfig& config);

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace tern::edge::origin
