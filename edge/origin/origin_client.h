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
//
// Retries: a request goes out again (once, on a new connection) only when
// it is idempotent (RFC 9110 9.2.2) and nothing of the response arrived; a
// POST or PATCH whose connection failed is answered with the error, never
// sent twice.

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
    // A piece of the body. The client reads on only once `more` has been
    // called (from any thread, once): that is the backpressure that keeps a
    // slow client from making the edge buffer the origin's body.
    std::function<void(std::string data, std::function<void()> more)> on_data;
    std::function<void(Status)> on_done;
    // Optional: interim responses (102, 103, ...) received before the final
    // response, in order.
    std::function<void(int, http::Fields)> on_interim;
  };
  virtual ~OriginClient() = default;
  virtual void fetch(OriginRequest request, Callbacks callbacks) = 0;
};

}  // namespace tern::edge::origin
