#pragma once
// BeastOriginClient: the OriginClient of one event loop, on Boost.Beast.
// Keeps idle keep-alive connections per upstream address, connects with a
// timeout, bounds every read with a timeout, and retries once on a fresh
// connection when a reused one turns out to be closed before any response
// byte arrived.
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
  bool tls_verify = true;   // verify origin certificates and host names
  std::string tls_ca_file;  // PEM bundle; empty: the system's CA store
};

// Parses "http://host[:port]" or "https://host[:port]" into an upstream.
Result<Upstream> parseUpstream(const std::string& url);

class BeastOriginClient final : public OriginClient {
 public:
  BeastOriginClient(boost::asio::io_context& ioc, const OriginConfig& config);
  ~BeastOriginClient() override;
  void fetch(OriginRequest request, Callbacks callbacks) override;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace tern::edge::origin
