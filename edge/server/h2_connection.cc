#include "edge/server/h2_connection.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <utility>

#include "common/clock.h"
#include "common/log.h"
#include "edge/http/request_head.h"

namespace tern::edge::server {

struct H2Connection::Stream {
  int32_t id = 0;
  std::shared_ptr<cache::Request> req = std::make_shared<cache::Request>();
  std::string authority;
  bool has_authority = false;
  bool has_method = false;
  std::vector<std::pair<std::string, std::string>> fields;
  size_t header_bytes = 0;
  bool headers_done = false;
  bool request_done = false;  // END_STREAM received
  bool has_cookie = false;    // (cookie crumbs count as one field)
  size_t cookie_crumbs = 0;   // cookie fields after the first
  // Refused before its journey (431, 413, 400): further input is dropped.
  bool rejected = false;
  bool dispatched = false;
  uint64_t body_bytes = 0;
  uint64_t held = 0;       // of body_bytes_held_: released once, at dispatch or close
  uint64_t discarded = 0;  // request body read and dropped after a rejection
  bool awaiting = false;   // dispatched, not answered
  // The response.
  bool responded = false;
  std::shared_ptr<cache::BodySource> body;
  std::string_view chunk;  // valid until the next body->next()
  size_t chunk_off = 0;
  size_t send_off = 0;    // where the DATA frame being sent starts in `chunk`
  bool waiting = false;   // a body->next() is outstanding
  bool deferred = false;  // nghttp2 was told NGHTTP2_ERR_DEFERRED
  bool eof = false;
  bool failed = false;
  std::optional<uint64_t> length;  // of the body, when known
  int status = 0;
  uint64_t bytes = 0;
  int64_t started_us = 0;
  std::string cache_status;
};

// The journey's answer for one stream. It holds the connection weakly: a
// stream the client reset, or a connection gone, drops the answer.
// The request body it was given counts against the connection until then.
class H2Connection::StreamResponder final : public cache::Responder {
 public:
  StreamResponder(std::weak_ptr<H2Connection> conn, int32_t id, uint64_t body_bytes)
      : conn_(std::move(conn)), id_(id), body_bytes_(body_bytes) {}
  ~StreamResponder() override {
    if (answered_) return;
    // A journey that ends without an answer: the stream is reset, as
    // HTTP/1.1 closes the connection.
    if (auto c = conn_.lock()) {
      c->handlerDone(body_bytes_);
      c->abandon(id_);
    }
  }
  void respond(int status, http::Fields headers, std::unique_ptr<cache::BodySource> body,
               std::optional<uint64_t> length) override {
    if (answered_) return;
    answered_ = true;
    if (auto c = conn_.lock()) {
      c->handlerDone(body_bytes_);
      c->respond(id_, status, std::move(headers), std::move(body), length);
    }
  }
  void interim(int status, http::Fields headers) override {
    if (answered_) return;
    if (auto c = conn_.lock()) c->interim(id_, status, headers);
  }

 private:
  std::weak_ptr<H2Connection> conn_;
  int32_t id_;
  uint64_t body_bytes_;
  bool answered_ = false;
};

namespace {

constexpr std::string_view kPseudoMethod = ":method";
constexpr uint64_t kDiscardBytes = 4 << 20;
constexpr std::string_view kPseudoPath = ":path";
constexpr std::string_view kPseudoAuthority = ":authority";

std::string_view view(const uint8_t* p, size_t n) { return {reinterpret_cast<const char*>(p), n}; }

// Fields a response must not carry over HTTP/2 (RFC 9113 section 8.2.2);
// Content-Length is set from the length the journey gives.
bool dropOverH2(std::string_view lower_name) {
  return lower_name == "connection" || lower_name == "keep-alive" ||
         lower_name == "proxy-connection" || lower_name == "transfer-encoding" ||
         lower_name == "upgrade" || lower_name == "te" || lower_name == "content-length";
}

// The request's Content-Length, when it has one that parses.
std::optional<uint64_t> declaredLength(const std::vector<std::pair<std::string, std::string>>& f) {
  for (const auto& [n, v] : f) {
    if (n != "content-length") continue;
    uint64_t out = 0;
    for (char ch : v) {
      if (ch < '0' || ch > '9' || out > (UINT64_MAX - 9) / 10) return std::nullopt;
      out = out * 10 + static_cast<uint64_t>(ch - '0');
    }
    return v.empty() ? std::nullopt : std::optional<uint64_t>(out);
  }
  return std::nullopt;
}

nghttp2_nv nv(std::string_view name, std::string_view value) {
  return {reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
          reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
          NGHTTP2_NV_FLAG_NONE};
}

}  // namespace

// nghttp2's callbacks, forwarded to the connection.
struct H2Callbacks {
  static H2Connection& conn(void* user) { return *static_cast<H2Connection*>(user); }

  static int onBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    auto& c = conn(user);
    auto s = std::make_unique<H2Connection::Stream>();
    s->id = frame->hd.stream_id;
    s->started_us = steadyNowUs();
    c.seen_request_ = true;
    c.streams_[s->id] = std::move(s);
    return 0;
  }

  static int onHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void* user) {
    auto& c = conn(user);
    auto* s = c.find(frame->hd.stream_id);
    if (!s || s->rejected) return 0;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
      return 0;  // trailers: read and dropped (nothing in the journey uses them)
    // RFC 7541 4.1's entry size: the list as decoded, the HPACK bomb included.
    s->header_bytes += namelen + valuelen + 32;
    if (s->header_bytes > c.settings_.max_header_list_bytes) {
      c.reject(*s, 431, "request header fields too large");
      return 0;
    }
    auto n = view(name, namelen);
    auto v = view(value, valuelen);
    if (n == kPseudoMethod) {
      s->req->method = std::string(v);
      s->has_method = true;
    } else if (n == kPseudoPath) {
      s->req->target = std::string(v);
    } else if (n == kPseudoAuthority) {
      s->authority = std::string(v);
      s->has_authority = true;
    } else if (n.empty() || n[0] != ':') {
      // nghttp2 has refused upper-case names, connection-specific fields and
      // TE other than "trailers" (RFC 9113 8.2.2) before this point. Cookie
      // crumbs (8.2.3) become one field: they count as one.
      const bool crumb = n == "cookie" && s->has_cookie;
      s->has_cookie = s->has_cookie || n == "cookie";
      if (!crumb && s->fields.size() - s->cookie_crumbs >= c.settings_.max_header_fields) {
        c.reject(*s, 431, "too many request header fields");
        return 0;
      }
      if (crumb) ++s->cookie_crumbs;
      s->fields.emplace_back(std::string(n), std::string(v));
    }
    return 0;
  }

  static int onFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    auto& c = conn(user);
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) return 0;
    auto* s = c.find(frame->hd.stream_id);
    if (!s) return 0;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
      s->headers_done = true;
      // A body declared larger than the limit is refused before it is sent.
      if (auto n = declaredLength(s->fields); n && *n > c.settings_.body_limit_bytes) {
        c.reject(*s, 413, "content too large");
        return 0;
      }
    }
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) s->request_done = true;
    if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) && s->headers_done && !s->rejected &&
        !s->dispatched) {
      s->dispatched = true;
      c.ready_.push_back(s->id);
    }
    return 0;
  }

  static int onDataChunk(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len,
                         void* user) {
    auto& c = conn(user);
    auto* s = c.find(id);
    if (s && s->rejected && !s->request_done) {
      // After an early answer (413) the rest of the request is read and
      // dropped: clients such as curl 7.88 discard a response followed by
      // RST_STREAM(NO_ERROR) while they upload, although RFC 9113 8.1 says
      // they must not. Past kDiscardBytes the stream is reset all the same.
      s->discarded += len;
      if (s->responded &&
          s->discarded > std::max<uint64_t>(c.settings_.body_limit_bytes, kDiscardBytes)) {
        s->request_done = true;
        nghttp2_submit_rst_stream(c.session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_NO_ERROR);
      }
      return 0;
    }
    if (!s || s->rejected || s->dispatched) return 0;
    if (s->body_bytes + len > c.settings_.body_limit_bytes ||
        c.body_bytes_held_ + len > 2 * c.settings_.body_limit_bytes) {
      c.reject(*s, 413, "content too large");
      return 0;
    }
    s->body_bytes += len;
    s->held += len;
    c.body_bytes_held_ += len;
    s->req->body.append(reinterpret_cast<const char*>(data), len);
    return 0;
  }

  static int onStreamClose(nghttp2_session*, int32_t id, uint32_t, void* user) {
    conn(user).streamClosed(id);
    return 0;
  }

  static ssize_t readBody(nghttp2_session*, int32_t id, uint8_t*, size_t length, uint32_t* flags,
                          nghttp2_data_source*, void* user) {
    return conn(user).readBody(id, length, flags);
  }

  static int onFrameSend(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    auto& c = conn(user);
    if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.error_code != NGHTTP2_NO_ERROR) {
      c.connectionError(std::string("GOAWAY sent: ") +
                        nghttp2_http2_strerror(frame->goaway.error_code));
    }
    return 0;
  }

  static int sendData(nghttp2_session*, nghttp2_frame* frame, const uint8_t* framehd, size_t length,
                      nghttp2_data_source*, void* user) {
    auto& c = conn(user);
    auto* s = c.find(frame->hd.stream_id);
    if (!c.sink_ || !s) return NGHTTP2_ERR_CALLBACK_FAILURE;
    c.sink_->append(reinterpret_cast<const char*>(framehd), 9);
    c.sink_->append(s->chunk.data() + s->send_off, length);  // never padded
    // A batch is full: nghttp2 stops here (flow-control windows may allow
    // far more than one batch; the rest waits for the next write).
    return c.sink_->size() >= c.sink_limit_ ? NGHTTP2_ERR_PAUSE : 0;
  }

  static int onError(nghttp2_session*, int, const char* msg, size_t len, void* user) {
    TERN_LOG(kDebug, "http/2 protocol error",
             {{"client", conn(user).client_ip_}, {"reason", std::string(msg, len)}});
    return 0;
  }
};

H2Connection::H2Connection(H2Settings settings, Hooks hooks, std::string client_ip,
                           std::string scheme)
    : settings_(settings),
      hooks_(std::move(hooks)),
      client_ip_(std::move(client_ip)),
      scheme_(std::move(scheme)) {}

Result<std::shared_ptr<H2Connection>> H2Connection::create(H2Settings settings, Hooks hooks,
                                                           std::string client_ip,
                                                           std::string scheme) {
  std::shared_ptr<H2Connection> c(
      new H2Connection(settings, std::move(hooks), std::move(client_ip), std::move(scheme)));
  nghttp2_session_callbacks* cbs = nullptr;
  if (nghttp2_session_callbacks_new(&cbs) != 0) return Status::internal("nghttp2: out of memory");
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, &H2Callbacks::onBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(cbs, &H2Callbacks::onHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &H2Callbacks::onFrameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &H2Callbacks::onDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &H2Callbacks::onStreamClose);
  nghttp2_session_callbacks_set_error_callback2(cbs, &H2Callbacks::onError);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, &H2Callbacks::onFrameSend);
  nghttp2_session_callbacks_set_send_data_callback(cbs, &H2Callbacks::sendData);
  nghttp2_option* opt = nullptr;
  nghttp2_option_new(&opt);
  // Closed streams are forgotten at once (no RFC 7540 priority tree).
  nghttp2_option_set_no_closed_streams(opt, 1);
  // The peer's SETTINGS_MAX_CONCURRENT_STREAMS is ours to enforce: streams
  // over it are refused (RST_STREAM REFUSED_STREAM), not queued.
  int rv = nghttp2_session_server_new2(&c->session_, cbs, c.get(), opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);
  if (rv != 0) return Status::internal(std::string("nghttp2: ") + nghttp2_strerror(rv));
  const nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, settings.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, settings.initial_window_bytes},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, settings.max_header_list_bytes},
      {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
  };
  rv = nghttp2_submit_settings(c->session_, NGHTTP2_FLAG_NONE, iv, std::size(iv));
  if (rv == 0 && settings.initial_window_bytes > NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE) {
    rv = nghttp2_session_set_local_window_size(c->session_, NGHTTP2_FLAG_NONE, 0,
                                               static_cast<int32_t>(settings.initial_window_bytes));
  }
  if (rv != 0) return Status::internal(std::string("nghttp2: ") + nghttp2_strerror(rv));
  return c;
}

H2Connection::~H2Connection() {
  // Should nghttp2 call back while it frees its streams, nothing is left to do.
  busy_ = true;
  destroying_ = true;
  if (session_) nghttp2_session_del(session_);
}

H2Connection::Stream* H2Connection::find(int32_t id) {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second.get();
}

void H2Connection::notify() {
  if (!busy_ && hooks_.output_ready) hooks_.output_ready();
}

Status H2Connection::receive(std::string_view bytes) {
  busy_ = true;
  ssize_t rv = fatal_ ? ssize_t{NGHTTP2_ERR_CALLBACK_FAILURE}
                      : nghttp2_session_mem_recv(
                            session_, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  busy_ = false;
  if (rv < 0) {
    // Fatal (a flood, a bad preface, too many CONTINUATIONs): nghttp2 has
    // queued nothing worth sending; the connection is closed as it is.
    fatal_ = true;
    Status st = rv == NGHTTP2_ERR_BAD_CLIENT_MAGIC
                    ? Status::invalidArgument("not an HTTP/2 connection preface")
                    : Status::invalidArgument(std::string("http/2: ") +
                                              nghttp2_strerror(static_cast<int>(rv)));
    connectionError(std::string(st.message()));
    return st;
  }
  dispatchReady();
  // Calming down is not fatal: GOAWAY is on its way, the streams taken finish.
  if (calm_down_) connectionError("http/2: too many requests reset while in flight");
  return Status::ok();
}

void H2Connection::connectionError(const std::string& reason) {
  if (error_reported_) return;
  error_reported_ = true;
  if (hooks_.connection_error) hooks_.connection_error(reason);
}

void H2Connection::dispatchReady() {
  auto ready = std::move(ready_);
  ready_.clear();
  auto self = shared_from_this();
  for (int32_t id : ready) {
    auto* s = find(id);
    if (!s || s->rejected) continue;  // reset by the client in the same read
    // Streams the client reset while their journey goes on still cost a
    // request each; past twice the stream limit that is an attack: GOAWAY
    // naming the last stream taken (those finish), the rest refused (a
    // client may retry them elsewhere).
    if (!calm_down_ && handlers_ >= 2 * static_cast<size_t>(settings_.max_concurrent_streams)) {
      calm_down_ = true;
      nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, last_dispatched_,
                            NGHTTP2_ENHANCE_YOUR_CALM, nullptr, 0);
    }
    if (calm_down_) {
      nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_REFUSED_STREAM);
      continue;
    }
    http::Http2RequestHead head;
    head.authority = s->authority;
    head.has_authority = s->has_authority;
    head.fields.reserve(s->fields.size());
    for (const auto& [n, v] : s->fields) head.fields.emplace_back(n, v);
    if (auto bad =
            http::checkHttp2RequestHead(head, settings_.max_header_fields, &s->req->headers)) {
      reject(*s, bad->status, bad->reason);
      continue;
    }
    if (s->req->method == "CONNECT") {
      reject(*s, 405, "CONNECT is not served here",
             {{"allow", "GET, HEAD, OPTIONS, POST, PUT, PATCH, DELETE"}});
      continue;
    }
    s->fields.clear();
    s->req->scheme = scheme_;
    s->req->client_ip = client_ip_;
    s->req->protocol = cache::Protocol::kHttp2;
    s->req->received_ms = wallNowMs();
    ++handlers_;
    ++awaiting_;
    s->awaiting = true;
    last_dispatched_ = id;
    // The body now belongs to the journey; it counts until the journey answers.
    const uint64_t held = std::exchange(s->held, 0);
    hooks_.dispatch(s->req, std::make_shared<StreamResponder>(weak_from_this(), id, held));
  }
}

void H2Connection::reject(Stream& s, int status, const std::string& reason, http::Fields extra) {
  if (s.rejected) return;
  s.rejected = true;
  body_bytes_held_ -= std::exchange(s.held, 0);
  s.req->body.clear();
  s.fields.clear();
  if (hooks_.rejected) hooks_.rejected(status, reason);
  if (s.req->method.empty()) s.req->method = "GET";  // for the access log
  std::string body = std::to_string(status) + " " + reason + "\n";
  extra.push_back({"content-type", "text/plain"});
  respond(s.id, status, std::move(extra), cache::stringSource(body), body.size());
}

void H2Connection::handlerDone(uint64_t body_bytes) {
  if (handlers_ > 0) --handlers_;
  body_bytes_held_ -= body_bytes;
}

void H2Connection::abandon(int32_t id) {
  auto* s = find(id);
  if (!s || s->responded) return;
  TERN_LOG(kWarn, "http/2 request left unanswered; stream reset", {{"stream", std::to_string(id)}});
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_INTERNAL_ERROR);
  notify();
}

void H2Connection::respond(int32_t id, int status, http::Fields headers,
                           std::unique_ptr<cache::BodySource> body,
                           std::optional<uint64_t> length) {
  auto* s = find(id);
  if (!s || s->responded) return;
  s->responded = true;
  if (std::exchange(s->awaiting, false)) --awaiting_;
  s->status = status;
  const bool head_only = s->req->method == "HEAD";
  std::string status_text = std::to_string(status);
  std::string length_text = length ? std::to_string(*length) : std::string();
  std::vector<nghttp2_nv> nva;
  nva.reserve(headers.size() + 2);
  nva.push_back(nv(":status", status_text));
  for (auto& f : headers) {
    for (auto& ch : f.name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (dropOverH2(f.name) || http::hasLineBreak(f.value)) continue;
    if (f.name == "cache-status") s->cache_status = f.value;
    // RFC 9113 8.2.1: no leading or trailing white space in a value.
    nva.push_back(nv(f.name, http::trim(f.value)));
  }
  if (length) nva.push_back(nv("content-length", length_text));
  nghttp2_data_provider provider{};
  provider.read_callback = &H2Callbacks::readBody;
  const bool with_body = body && !head_only;
  if (with_body) {
    s->body = std::move(body);
    s->length = length;
    ++sending_;
  }
  int rv = nghttp2_submit_response(session_, id, nva.data(), nva.size(),
                                   with_body ? &provider : nullptr);
  if (rv != 0) {
    TERN_LOG(kDebug, "http/2 response not sent", {{"reason", nghttp2_strerror(rv)}});
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_INTERNAL_ERROR);
  }
  notify();
}

void H2Connection::interim(int32_t id, int status, const http::Fields& headers) {
  auto* s = find(id);
  if (!s || s->responded || status < 100 || status > 199 || status == 101) return;
  std::string status_text = std::to_string(status);
  std::vector<std::string> names;
  names.reserve(headers.size());
  std::vector<nghttp2_nv> nva;
  nva.reserve(headers.size() + 1);
  nva.push_back(nv(":status", status_text));
  for (const auto& f : headers) {
    names.push_back(http::toLower(f.name));
    if (dropOverH2(names.back()) || http::hasLineBreak(f.value)) continue;
    nva.push_back(nv(names.back(), http::trim(f.value)));
  }
  nghttp2_submit_headers(session_, NGHTTP2_FLAG_NONE, id, nullptr, nva.data(), nva.size(), nullptr);
  notify();
}

void H2Connection::pull(int32_t id, Stream& s) {
  s.waiting = true;
  std::weak_ptr<H2Connection> weak = weak_from_this();
  auto src = s.body;
  src->next([weak, id, src](Result<std::string_view> chunk) {
    auto c = weak.lock();
    if (!c) return;
    auto* st = c->find(id);
    if (!st || st->body != src) return;
    st->waiting = false;
    if (!chunk.ok()) {
      TERN_LOG(kWarn, "response body failed", {{"reason", chunk.status().toString()}});
      st->failed = true;
    } else if (chunk->empty()) {
      st->eof = true;
    } else {
      st->chunk = *chunk;
      st->chunk_off = 0;
    }
    if (st->deferred) {
      st->deferred = false;
      nghttp2_session_resume_data(c->session_, id);
      c->notify();
    }
  });
}

long H2Connection::readBody(int32_t id, size_t length, uint32_t* flags) {
  auto* s = find(id);
  if (!s || !s->body) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  for (;;) {
    if (s->chunk_off < s->chunk.size()) {
      // No copy here: sendData() writes the frame straight from the chunk.
      size_t n = std::min(length, s->chunk.size() - s->chunk_off);
      if (s->length) n = static_cast<size_t>(std::min<uint64_t>(n, *s->length - s->bytes));
      *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
      s->send_off = s->chunk_off;
      s->chunk_off += n;
      s->bytes += n;
      // The last byte of a body of known length ends the stream in the same
      // DATA frame (no empty frame after it).
      if (s->length && s->bytes >= *s->length && s->chunk_off == s->chunk.size())
        *flags |= NGHTTP2_DATA_FLAG_EOF;
      return static_cast<long>(n);
    }
    if (s->failed) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // resets the stream
    if (s->eof) {
      // A body shorter than its Content-Length must not end like a whole one.
      if (s->length && s->bytes < *s->length) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      return 0;
    }
    if (!s->waiting) pull(id, *s);
    if (s->waiting) {  // not answered at once: nghttp2 is resumed when it is
      s->deferred = true;
      return NGHTTP2_ERR_DEFERRED;
    }
  }
}

void H2Connection::streamClosed(int32_t id) {
  if (destroying_) return;
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  Stream& s = *it->second;
  body_bytes_held_ -= std::exchange(s.held, 0);
  if (std::exchange(s.awaiting, false)) --awaiting_;
  if (s.body && sending_ > 0) --sending_;
  if (s.responded && hooks_.stream_end) {
    auto host = http::findField(s.req->headers, "host");
    hooks_.stream_end({client_ip_, s.req->method, host ? *host : std::string_view(), s.req->target,
                       "HTTP/2.0", s.cache_status, s.status, s.bytes,
                       steadyNowUs() - s.started_us});
  }
  streams_.erase(it);
}

void H2Connection::pendingOutput(std::string& out, size_t limit) {
  if (fatal_) return;
  busy_ = true;
  sink_ = &out;
  sink_limit_ = limit;
  while (out.size() < limit) {
    const uint8_t* data = nullptr;
    ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) {
      fatal_ = true;
      TERN_LOG(kInfo, "http/2 session failed",
               {{"client", client_ip_}, {"reason", nghttp2_strerror(static_cast<int>(n))}});
      break;
    }
    if (n == 0) break;  // nothing left, or paused by sendData with a full batch
    out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
  }
  sink_ = nullptr;
  busy_ = false;
}

bool H2Connection::wantRead() const { return !fatal_ && nghttp2_session_want_read(session_) != 0; }
bool H2Connection::wantWrite() const {
  return !fatal_ && nghttp2_session_want_write(session_) != 0;
}

bool H2Connection::stalledByPeer() const {
  if (sending_ == 0) return false;
  const bool connection_closed = nghttp2_session_get_remote_window_size(session_) <= 0;
  for (const auto& [id, s] : streams_) {
    if (!s->body || s->eof || s->waiting || s->failed) continue;  // nothing ready to send
    if (connection_closed || nghttp2_session_get_stream_remote_window_size(session_, id) <= 0)
      return true;
  }
  return false;
}

void H2Connection::shutdownNotice() {
  nghttp2_submit_shutdown_notice(session_);
  notify();
}

void H2Connection::shutdown() {
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                        nullptr, 0);
  notify();
}

}  // namespace tern::edge::server
