#pragma once
// Blocking HTTP/1.1 client helpers for tests, on loopback only.

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace tern::testing {

struct HttpResponse {
  int status = 0;                              // 0: no response (connection failed or closed)
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// One request on a new connection to 127.0.0.1:port.
HttpResponse httpRequest(int port, const std::string& method, const std::string& target,
                         const HeaderList& headers = {}, const std::string& body = {},
                         int timeout_ms = 10000);
inline HttpResponse httpGet(int port, const std::string& target, const HeaderList& headers = {}) {
  return httpRequest(port, "GET", target, headers);
}

// GET over TLS (certificate not verified: tests use self-signed ones).
HttpResponse httpsGet(int port, const std::string& target, const HeaderList& headers = {});

// Sends raw bytes and returns everything read until the peer closes or the
// timeout passes (for malformed requests and pipelining).
std::string rawExchange(int port, const std::string& bytes, int timeout_ms = 3000);

// Sends `head` (ending in an empty line, with Expect: 100-continue), waits for
// "100 Continue", then sends `body`; returns everything read. Empty if the
// server never asked for the body.
std::string expectContinueExchange(int port, const std::string& head, const std::string& body,
                                   int timeout_ms = 3000);

// Runs `n` GET requests concurrently, each on its own connection; returns
// the responses in order.
std::vector<HttpResponse> concurrentGets(int port, const std::string& target, int n,
                                         const HeaderList& headers = {});

// An edge answers a miss while it is still storing the response: repeats
// `fetch` (up to 100 times, 20 ms apart) until its Cache-Status says "hit",
// and returns the last response.
HttpResponse waitForHit(const std::function<HttpResponse()>& fetch);

}  // namespace tern::testing
