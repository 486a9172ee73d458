#pragma once
// OriginClient: sends a request to the origin server configured for its host
// and streams the response back through callbacks. The interface is plain
// C++ so that edge/cache can use it without seeing Asio; the implementation
// (beast_origin_client) pools keep-alive connections per event loop.
//
// Callbacks run on the event loop that called fetch(). on_head is called at
// most once; then on_data for each piece of the body; then on_done exactly
// once (OK, or the error: Timeout, Unavailable for connect/read failures,
// all tagged ErrorSource::kOrigin).

#include <cstdint>
#include <functional>
#include <string>

#include "common/result.h"
#include "edge/http/fields.h"

namespace tern::edge::origin {

struct OriginRequest {
  std::string method;
  std::string target;     // origin-form: "/path?query"
  std::string authority;  // Host header value and the key to choose the origin
  http::Fields headers;   // end-to-end fields; Host and framing are set by the client
  std::string body;
};

struct OriginHead {
  int status = 0;
  http::Fields headers;  // hop-by-hop fields already removed
  int64_t request_time_ms = 0;
  int64_t response_time_ms = 0;
};

class OriginClient {
 public:
  struct Callbacks {
    std::function<void(Result<OriginHead>)> on_head;
    std::function<void(std::string)> on_data;
    std::function<void(Status)> on_done;
    // Optional: 103 Early Hints received before the final response.
    std::function<void(int, http::Fields)> on_interim;
  };
  virtual ~OriginClient() = default;
  virtual void fetch(OriginRequest request, Callbacks callbacks) = 0;
};

}  // namespace tern::edge::origin
