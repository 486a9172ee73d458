#pragma once
// HttpServer: the coordinator's HTTP/1.1 listener (Boost.Beast). Reads a
// request, hands it to HttpApi, writes the answer when it comes (possibly
// from another thread, e.g. a purge waiting for every edge). Keep-alive,
// limits on head and body size, timeouts for slow clients; HTTPS when given a
// certificate.

#include <memory>
#include <string>

#include "common/result.h"
#include "coordinator/api/http_api.h"

namespace tern::coordinator {

struct HttpServerOptions {
  std::string listen = "127.0.0.1:8470";
  int threads = 2;
  uint64_t body_limit_bytes = 16 << 20;
  uint32_t read_timeout_ms = 30000;
  uint32_t idle_timeout_ms = 60000;
  // Open connections at most; more are closed as they are accepted (a
  // wait=all call holds its connection until it is answered).
  size_t max_connections = 1024;
  // PEM certificate chain and key: the listener speaks HTTPS only.
  std::string tls_cert;
  std::string tls_key;
};

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, HttpApi* api);
  ~HttpServer();
  Status start();
  int port() const;
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tern::coordinator
