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

namespace {

// A body handed out chunk by chunk when the test says so (as the disk tier
// or an origin response would, later). The test steps it through a state
// it shares with the source: the source itself belongs to the connection.
struct Later {
  std::vector<std::string>* parked;
  std::vector<std::function<void(tern::Result<std::string_view>)>> waiting;
  int left = 3;
  // Gives the next chunk (or the end) to whoever waits.
  void step() {
    if (waiting.empty()) return;
    auto done = std::move(waiting.front());
    waiting.erase(waiting.begin());
    if (left-- > 0) {
      parked->push_back("chunk of a later body");
      done(std::string_view(parked->back()));
    } else {
      done(std::string_view());
    }
  }
};

class LaterSource : public cache::BodySource {
 public:
  explicit LaterSource(std::shared_ptr<Later> state) : state_(std::move(state)) {}
  void next(std::function<void(tern::Result<std::string_view>)> done) override {
    state_->waiting.push_back(std::move(done));
  }

 private:
  std::shared_ptr<Later> state_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  server::H2Settings settings;
  settings.max_concurrent_streams = 8;
  settings.max_header_list_bytes = 4096;
  settings.max_header_fields = 32;
  settings.body_limit_bytes = 8192;
  settings.initial_window_bytes = 16384;
  std::vector<std::shared_ptr<cache::Responder>> later;
  std::vector<std::shared_ptr<Later>> sources;
  std::vector<std::string> parked;
  parked.reserve(1 << 16);  // views into it stay valid
  server::H2Connection::Hooks hooks;
  hooks.dispatch = [&](std::shared_ptr<cache::Request> req,
                       std::shared_ptr<cache::Responder> responder) {
    switch (req->target.size() % 5) {
      case 0: {  // answered at once
        std::string body = req->method + " " + req->target;
        const size_t n = body.size();
        responder->respond(200, {{"Content-Type", "text/plain "}, {"Connection", "close"}},
                           cache::stringSource(std::move(body)), n);
        break;
      }
      case 1:  // answered after the frames
        later.push_back(std::move(responder));
        break;
      case 2: {  // a head now, the body chunk by chunk later (length unknown)
        responder->interim(103, {{"Link", "</a.css>; rel=preload"}});
        sources.push_back(std::make_shared<Later>(Later{&parked, {}, 3}));
        responder->respond(200, {}, std::make_unique<LaterSource>(sources.back()), std::nullopt);
        break;
      }
      case 3: {  // a body shorter than its Content-Length
        sources.push_back(std::make_shared<Later>(Later{&parked, {}, 3}));
        responder->respond(200, {}, std::make_unique<LaterSource>(sources.back()), 1000);
        break;
      }
      default:
        break;  // dropped unanswered: the stream is reset
    }
  };
  auto conn = server::H2Connection::create(settings, std::move(hooks), "127.0.0.1", "http");
  if (!conn.ok()) return 0;
  auto c = *conn;
  static const std::string kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  if (!c->receive(kPreface).isOk()) return 0;
  std::string out;
  size_t at = 0;
  bool shut = false;
  while (at < size) {
    // The first byte of each piece says how long it is; its low bits also
    // move the later bodies along, and one value starts a graceful stop.
    const uint8_t control = data[at];
    const size_t n = std::min(size - at - 1, size_t{1} + control * 8);
    if (!c->receive(std::string_view(reinterpret_cast<const char*>(data) + at + 1, n)).isOk())
      break;
    at += 1 + n;
    if (control % 4 == 1) {
      for (auto& s : sources) s->step();
    }
    if (control == 0xff && !shut) {
      shut = true;
      c->shutdownNotice();
      c->shutdown();
    }
    out.clear();
    c->pendingOutput(out, 16 * 1024);
  }
  for (auto& r : later) r->respond(200, {}, cache::stringSource("later"), 5);
  for (int i = 0; i < 5; ++i) {
    for (auto& s : sources) s->step();
    out.clear();
    c->pendingOutput(out, 1 << 20);
  }
  return 0;
}
