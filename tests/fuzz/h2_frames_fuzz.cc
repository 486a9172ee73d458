// HTTP/2 from a client: the fuzzer writes the frames after the connection
// preface, fed to nghttp2 and H2Connection in pieces, and the request
// journey answers each request now, later or never (the stream may be gone
// by then). Never a crash, a leak or a sanitizer report; the output is
// drained as a session would.
#include <memory>
#include <string>
#include <vector>

#include "edge/server/h2_connection.h"

using namespace tern::edge;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  server::H2Settings settings;
  settings.max_concurrent_streams = 8;
  settings.max_header_list_bytes = 4096;
  settings.max_header_fields = 32;
  settings.body_limit_bytes = 8192;
  settings.initial_window_bytes = 16384;
  std::vector<std::shared_ptr<cache::Responder>> later;
  server::H2Connection::Hooks hooks;
  hooks.dispatch = [&later](std::shared_ptr<cache::Request> req,
                            std::shared_ptr<cache::Responder> responder) {
    switch (req->target.size() % 3) {
      case 0: {
        std::string body = req->method + " " + req->target;
        const size_t n = body.size();
        responder->respond(200, {{"Content-Type", "text/plain"}, {"Connection", "close"}},
                           cache::stringSource(std::move(body)), n);
        break;
      }
      case 1:
        later.push_back(std::move(responder));
        break;
      default:
        break;  // dropped unanswered
    }
  };
  auto conn = server::H2Connection::create(settings, std::move(hooks), "127.0.0.1", "http");
  if (!conn.ok()) return 0;
  auto c = *conn;
  static const std::string kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  if (!c->receive(kPreface).isOk()) return 0;
  std::string out;
  size_t at = 0;
  while (at < size) {
    // The first byte of each piece says how long it is.
    const size_t n = std::min(size - at - 1, size_t{1} + data[at] * 8);
    if (!c->receive(std::string_view(reinterpret_cast<const char*>(data) + at + 1, n)).isOk())
      break;
    at += 1 + n;
    out.clear();
    c->pendingOutput(out, 64 * 1024);
  }
  for (auto& r : later) r->respond(200, {}, cache::stringSource("later"), 5);
  out.clear();
  c->pendingOutput(out, 1 << 20);
  return 0;
}
