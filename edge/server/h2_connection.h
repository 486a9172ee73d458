#pragma once
// H2Connection: the protocol state of one HTTP/2 connection (RFC 9113) on
// nghttp2. Framing, HPACK, stream states and flow control are nghttp2's;
// this class turns each complete request stream into a cache::Request for
// the one request journey (cache::handleRequest, the same as HTTP/1.1), and
// feeds each response's BodySource into DATA frames only as fast as the
// peer's flow-control windows open, so a slow reader holds one chunk per
// stream, never a whole body.
//
// No I/O here: the session (server.cc) hands in the bytes it reads with
// receive() and writes out what pendingOutput() gives; `output_ready` tells
// it that a response or a body chunk arrived between two reads.
//
// Defences, besides nghttp2's own (CONTINUATION and SETTINGS/PING-ACK
// floods, the RST_STREAM rate limit against rapid reset, CVE-2023-44487):
// a header list over `max_header_list_bytes` is answered 431 as it is
// decoded (nothing past the limit is kept: an HPACK bomb costs nothing),
// request bodies held (until their journeys answer) are bounded per
// connection to twice body_limit, and a client that keeps resetting streams
// whose requests are still being worked on past twice max_concurrent_streams
// gets GOAWAY (ENHANCE_YOUR_CALM). One write batch is bounded however far
// the peer opens its windows.
//
// Thread-safety: one event loop.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "edge/cache/request_flow.h"
#include "edge/server/access_log.h"

struct nghttp2_session;

namespace tern::edge::server {

struct H2Settings {
  uint32_t max_concurrent_streams = 128;
  uint32_t max_header_list_bytes = 32 * 1024;  // SETTINGS_MAX_HEADER_LIST_SIZE, enforced
  uint32_t initial_window_bytes = 256 * 1024;  // per stream and for the connection
  size_t max_header_fields = 100;
  uint64_t body_limit_bytes = 16ULL << 20;  // per request; twice that held per connection
};

class H2Connection : public std::enable_shared_from_this<H2Connection> {
 public:
  struct Hooks {
    // A complete request: start its journey (on this loop).
    std::function<void(std::shared_ptr<cache::Request>, std::shared_ptr<cache::Responder>)>
        dispatch;
    // Frames became ready outside receive() and pendingOutput().
    std::function<void()> output_ready;
    // A stream that carried a response ended (for the access log); optional.
    std::function<void(const AccessRecord&)> stream_end;
    // A request refused before its journey (malformed or over a limit).
    std::function<void(int status, const std::string& reason)> rejected;
    // The connection ends for the peer's fault (a protocol error, a flood,
    // rapid reset): called once, with what happened.
    std::function<void(const std::string& reason)> connection_error;
  };

  static Result<std::shared_ptr<H2Connection>> create(H2Settings settings, Hooks hooks,
                                                      std::string client_ip, std::string scheme);
  ~H2Connection();
  H2Connection(const H2Connection&) = delete;
  H2Connection& operator=(const H2Connection&) = delete;

  // Feeds bytes read from the peer (the first ones start with the client
  // connection preface). An error means the connection is beyond repair:
  // write out what pendingOutput() still gives (a GOAWAY), then close.
  Status receive(std::string_view bytes);
  // Appends frames ready to send to `out`, until it holds about `limit`
  // bytes or nothing is ready.
  void pendingOutput(std::string& out, size_t limit);
  // Whether the connection is still open in each direction: when neither,
  // it is finished (after GOAWAY and its last stream) and may be closed.
  bool wantRead() const;
  bool wantWrite() const;
  // What the session's timeout depends on: streams whose response body is
  // being sent; open streams whose journey has not answered yet; whether a
  // stream has data to send that the peer's flow-control windows hold back.
  size_t sendingStreams() const { return sending_; }
  size_t awaitingAnswer() const { return awaiting_; }
  bool stalledByPeer() const;
  bool seenRequest() const { return seen_request_; }
  // Graceful stop: first a GOAWAY that announces it (RFC 9113 6.8), about a
  // round trip later the one naming the last stream taken; those finish.
  void shutdownNotice();
  void shutdown();

 private:
  struct Stream;
  class StreamResponder;
  friend struct H2Callbacks;

  H2Connection(H2Settings settings, Hooks hooks, std::string client_ip, std::string scheme);
  Stream* find(int32_t id);
  void notify();
  void dispatchReady();
  void reject(Stream& s, int status, const std::string& reason, http::Fields extra = {});
  void respond(int32_t id, int status, http::Fields headers,
               std::unique_ptr<cache::BodySource> body, std::optional<uint64_t> length);
  void interim(int32_t id, int status, const http::Fields& headers);
  void handlerDone(uint64_t body_bytes);
  void abandon(int32_t id);
  void pull(int32_t id, Stream& s);
  long readBody(int32_t id, size_t length, uint32_t* flags);
  void streamClosed(int32_t id);
  void connectionError(const std::string& reason);

  H2Settings settings_;
  Hooks hooks_;
  std::string client_ip_, scheme_;
  nghttp2_session* session_ = nullptr;
  std::unordered_map<int32_t, std::unique_ptr<Stream>> streams_;
  std::vector<int32_t> ready_;  // complete requests, dispatched after mem_recv returns
  uint64_t body_bytes_held_ = 0;
  size_t sending_ = 0;
  size_t handlers_ = 0;  // journeys begun and not yet answered (reset streams too)
  size_t awaiting_ = 0;  // open streams whose journey has not answered
  int32_t last_dispatched_ = 0;
  size_t sink_limit_ = 0;
  std::string* sink_ = nullptr;  // where pendingOutput() puts DATA frames
  bool busy_ = false;            // inside nghttp2 (no re-entry through output_ready)
  bool seen_request_ = false;
  bool calm_down_ = false;
  bool destroying_ = false;
  bool error_reported_ = false;
  bool fatal_ = false;  // nghttp2 failed: nothing more is read or sent
};

}  // namespace tern::edge::server
