#pragma once
// TestOrigin: a real HTTP/1.1 origin server on loopback for tests, running
// on its own thread. Each path serves a programmable response (status,
// headers, body, delay); requests are counted and recorded. A stored ETag or
// Last-Modified is honoured for conditional requests (304).
//
// Thread-safety: all methods are thread-safe.

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace tern::testing {

struct OriginResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  int delay_ms = 0;  // before the response head
  bool honor_conditionals = true;
  std::vector<std::pair<std::string, std::string>> early_hints;  // sent as a 103 first
};

struct RecordedRequest {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

class TestOrigin {
 public:
  TestOrigin();  // listens on 127.0.0.1, a free port
  ~TestOrigin();
  int port() const;
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port()); }

  // Programs the response for a path (with query, as in the target).
  void set(const std::string& target, OriginResponse response);
  // Requests seen for a target, and all requests.
  int count(const std::string& target) const;
  std::vector<RecordedRequest> requests() const;
  void reset();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace tern::testing
