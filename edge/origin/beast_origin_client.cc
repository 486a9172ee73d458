#include "edge/origin/beast_origin_client.h"

#include <sys/socket.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>
#include <cerrno>
#include <optional>

#include "common/clock.h"
#include "common/log.h"

namespace tern::edge::origin {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

bool isIdempotent(std::string_view m) {
  return m == "GET" || m == "HEAD" || m == "OPTIONS" || m == "TRACE" || m == "PUT" || m == "DELETE";
}

Result<Upstream> parseUpstream(const std::string& url) {
  auto u = boost::urls::parse_uri(url);
  if (!u || (u->scheme() != "http" && u->scheme() != "https") || u->host().empty()) {
    return Status::invalidArgument("origin must be http[s]://host[:port]: '" + url + "'");
  }
  const bool tls = u->scheme() == "https";
  return Upstream{std::string(u->host()),
                  u->has_port() ? std::string(u->port()) : (tls ? "443" : "80"), tls};
}

// One connection to an upstream, plain or TLS.
struct Conn {
  Conn(asio::io_context& ioc, asio::ssl::context* tls_ctx) {
    if (tls_ctx != nullptr) {
      tls = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(ioc, *tls_ctx);
    } else {
      plain = std::make_unique<beast::tcp_stream>(ioc);
    }
  }
  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
  // Calls f with the stream to read and write.
  template <class F>
  void with(F&& f) {
    if (tls) {
      f(*tls);
    } else {
      f(*plain);
    }
  }
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls;
  // Beast reads as much as the buffer has room for (at least 512 bytes): a
  // buffer sized only by the response head would take a body 512 bytes per
  // read. With room for kReadBytes a 16 KiB body takes one or two reads.
  static constexpr size_t kReadBytes = 16 * 1024;
  beast::flat_buffer buffer = [] {
    beast::flat_buffer b;
    b.reserve(kReadBytes);
    return b;
  }();
  int64_t idle_since_us = 0;  // when it was put back in the pool

  // Whether an idle connection can carry a request: the origin has not
  // closed it (a read would see EOF) and sent nothing unasked (a TLS
  // close_notify, a stray response). Never blocks.
  bool stillOpen() {
    auto& sock = lowest().socket();
    if (!sock.is_open() || buffer.size() > 0) return false;
    char c;
    ssize_t n = ::recv(sock.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }
};

struct BeastOriginClient::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& ioc_, const OriginConfig& config_)
      : ioc(ioc_), config(config_), resolver(ioc_), sweeper(ioc_) {
    tls_ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                        asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                        asio::ssl::context::no_tlsv1_1);
    if (config.tls_verify) {
      tls_ctx.set_verify_mode(asio::ssl::verify_peer);
      beast::error_code ec;
      if (config.tls_ca_file.empty()) {
        tls_ctx.set_default_verify_paths(ec);
      } else {
        tls_ctx.load_verify_file(config.tls_ca_file, ec);
      }
      if (ec)
        TERN_LOG(kError, "cannot load CA certificates for origins", {{"reason", ec.message()}});
    } else {
      tls_ctx.set_verify_mode(asio::ssl::verify_none);
    }
  }
  asio::io_context& ioc;
  asio::ssl::context tls_ctx{asio::ssl::context::tls_client};
  OriginConfig config;
  tcp::resolver resolver;
  // Idle connections per upstream, oldest first.
  std::map<std::string, std::vector<std::shared_ptr<Conn>>> idle;
  size_t round_robin = 0;
  asio::steady_timer sweeper;
  bool sweeping = false;

  // A pooled connection that is still usable, or null.
  std::shared_ptr<Conn> takeIdle(const std::string& key) {
    auto& pool = idle[key];
    const int64_t now = steadyNowUs();
    while (!pool.empty()) {
      auto c = std::move(pool.back());
      pool.pop_back();
      if (now - c->idle_since_us < config.idle_timeout_ms * 1000 && c->stillOpen()) return c;
    }
    return nullptr;
  }

  void putIdle(const std::string& key, std::shared_ptr<Conn> c) {
    auto& pool = idle[key];
    if (pool.size() >= config.max_idle_per_upstream) return;
    c->lowest().expires_never();
    c->idle_since_us = steadyNowUs();
    pool.push_back(std::move(c));
    if (!sweeping) armSweeper();
  }

  // Closes connections idle for longer than idle_timeout_ms.
  void armSweeper() {
    sweeping = true;
    sweeper.expires_after(std::chrono::milliseconds(std::max<int64_t>(config.idle_timeout_ms, 10)));
    std::weak_ptr<Impl> weak = shared_from_this();
    sweeper.async_wait([weak](beast::error_code ec) {
      auto self = weak.lock();
      if (!self || ec) return;
      self->sweeping = false;
      const int64_t cutoff = steadyNowUs() - self->config.idle_timeout_ms * 1000;
      bool any = false;
      for (auto& [key, pool] : self->idle) {
        std::erase_if(pool, [cutoff](const auto& c) { return c->idle_since_us <= cutoff; });
        any = any || !pool.empty();
      }
      if (any) self->armSweeper();
    });
  }

  const Upstream* pick(const std::string& authority) {
    std::string host = authority;
    for (auto& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto it = config.by_host.find(host);
    if (it == config.by_host.end()) {
      auto colon = host.rfind(':');
      if (colon != std::string::npos) it = config.by_host.find(host.substr(0, colon));
    }
    const auto& list = it != config.by_host.end() ? it->second : config.default_upstreams;
    if (list.empty()) return nullptr;
    return &list[round_robin++ % list.size()];
  }
};

namespace {

// One exchange with the origin; owns the callbacks until on_done.
struct Exchange : std::enable_shared_from_this<Exchange> {
  static constexpr uint64_t kBodyPieceBytes = 64 * 1024;
  std::shared_ptr<BeastOriginClient::Impl> impl;
  Upstream upstream;
  std::string pool_key;
  OriginRequest request;
  OriginClient::Callbacks cb;
  std::shared_ptr<Conn> conn;
  bool reused = false;
  bool retried = false;
  bool head_sent = false;
  int64_t request_time_ms = 0;
  bhttp::request<bhttp::string_body> req;
  std::unique_ptr<bhttp::response_parser<bhttp::buffer_body>> parser;
  std::string piece;  // the body read next: handed on as it is, not copied
  static constexpr uint64_t kUnknownLength = ~uint64_t{0};
  uint64_t body_left = kUnknownLength;  // of a body of known length

  void fail(Status st) {
    if (!head_sent) {
      head_sent = true;
      cb.on_head(st);
    }
    auto done = std::move(cb.on_done);
    cb = {};
    if (done) done(st.withSource(ErrorSource::kOrigin));
  }

  Status errorStatus(const beast::error_code& ec, const char* what) {
    std::string msg =
        std::string(what) + " " + upstream.host + ":" + upstream.port + ": " + ec.message();
    if (ec == beast::error::timeout) return Status::timeout("origin timeout: " + msg);
    return Status::unavailable("origin " + msg);
  }

  void start() {
    request_time_ms = wallNowMs();
    req = {};
    req.version(11);
    req.method_string(request.method);
    req.target(request.target);
    for (const auto& f : request.headers) req.insert(f.name, f.value);
    req.set(bhttp::field::host, request.authority);
    req.keep_alive(true);
    req.body() = request.body;
    if (!request.body.empty() || request.method == "POST" || request.method == "PUT" ||
        request.method == "PATCH") {
      req.prepare_payload();
    }
    if (auto c = impl->takeIdle(pool_key)) {
      conn = std::move(c);
      reused = true;
      return write();
    }
    reused = false;
    conn = std::make_shared<Conn>(impl->ioc, upstream.tls ? &impl->tls_ctx : nullptr);
    auto self = shared_from_this();
    impl->resolver.async_resolve(
        upstream.host, upstream.port,
        [self](beast::error_code ec, tcp::resolver::results_type results) {
          if (ec) return self->fail(self->errorStatus(ec, "resolve"));
          self->conn->lowest().expires_after(
              std::chrono::milliseconds(self->impl->config.connect_timeout_ms));
          self->conn->lowest().async_connect(
              results, [self](beast::error_code ec2, const tcp::endpoint&) {
                if (ec2) return self->fail(self->errorStatus(ec2, "connect"));
                beast::error_code ignored;
                self->conn->lowest().socket().set_option(tcp::no_delay(true), ignored);
                if (!self->conn->tls) return self->write();
                self->handshake();
              });
        });
  }

  void handshake() {
    auto& tls = *conn->tls;
    const std::string& name = upstream.host;
    // SNI and the name the certificate must carry.
    if (!SSL_set_tlsext_host_name(tls.native_handle(), name.c_str())) {
      return fail(Status::unavailable("origin TLS: cannot set server name " + name));
    }
    if (impl->config.tls_verify) tls.set_verify_callback(asio::ssl::host_name_verification(name));
    auto self = shared_from_this();
    tls.async_handshake(asio::ssl::stream_base::client, [self](beast::error_code ec) {
      if (ec) return self->fail(self->errorStatus(ec, "TLS handshake with"));
      self->write();
    });
  }

  void retryOrFail(const beast::error_code& ec, const char* what) {
    // A pooled connection the origin closed meanwhile: one fresh attempt,
    // only if the request may be sent twice and no response byte arrived
    // (the origin may have acted on it otherwise).
    const bool received = conn->buffer.size() > 0 || (parser && parser->got_some());
    if (reused && !retried && !head_sent && !received && isIdempotent(request.method)) {
      retried = true;
      conn.reset();
      impl->idle[pool_key].clear();
      return start();
    }
    fail(errorStatus(ec, what));
  }

  void write() {
    auto self = shared_from_this();
    conn->lowest().expires_after(std::chrono::milliseconds(impl->config.read_timeout_ms));
    conn->with([&](auto& stream) {
      bhttp::async_write(stream, req, [self](beast::error_code ec, size_t) {
        if (ec) return self->retryOrFail(ec, "write");
        self->readHead();
      });
    });
  }

  void readHead() {
    parser = std::make_unique<bhttp::response_parser<bhttp::buffer_body>>();
    parser->body_limit(boost::none);
    parser->header_limit(64 * 1024);
    if (request.method == "HEAD") parser->skip(true);
    auto self = shared_from_this();
    conn->lowest().expires_after(std::chrono::milliseconds(impl->config.read_timeout_ms));
    conn->with([&](auto& stream) {
      bhttp::async_read_header(stream, conn->buffer, *parser, [self](beast::error_code ec, size_t) {
        if (ec) return self->retryOrFail(ec, "read");
        self->onHead();
      });
    });
  }

  void onHead() {
    auto& msg = parser->get();
    int status = static_cast<int>(msg.result_int());
    if (status >= 100 && status < 200) {
      // Interim responses (102 Processing, 103 Early Hints, ...): passed on
      // in order, then the final one is awaited. 100 Continue is the edge's
      // own business with its client; 101 is never forwarded.
      if (status != 100 && status != 101 && cb.on_interim) {
        http::Fields hints;
        for (const auto& f : msg)
          hints.push_back({std::string(f.name_string()), std::string(f.value())});
        http::stripHopByHop(hints);
        cb.on_interim(status, std::move(hints));
      }
      return readHead();
    }
    OriginHead head;
    head.status = status;
    head.request_time_ms = request_time_ms;
    head.response_time_ms = wallNowMs();
    for (const auto& f : msg)
      head.headers.push_back({std::string(f.name_string()), std::string(f.value())});
    http::stripHopByHop(head.headers);
    body_left = kUnknownLength;
    if (msg.has_content_length()) {
      body_left = *parser->content_length();
      http::setField(head.headers, "Content-Length", std::to_string(body_left));
    }
    head_sent = true;
    cb.on_head(std::move(head));
    readBody();
  }

  void readBody() {
    if (parser->is_done()) return finish();
    // Read straight into the string that is handed on: as large as what is
    // left of a body of known length, up to kBodyPieceBytes.
    size_t want = kBodyPieceBytes;
    if (body_left != kUnknownLength)
      want = static_cast<size_t>(std::clamp<uint64_t>(body_left, 1, kBodyPieceBytes));
    piece.resize(want);
    parser->get().body().data = piece.data();
    parser->get().body().size = piece.size();
    auto self = shared_from_this();
    conn->lowest().expires_after(std::chrono::milliseconds(impl->config.read_timeout_ms));
    conn->with([&](auto& stream) {
      bhttp::async_read(stream, conn->buffer, *parser, [self](beast::error_code ec, size_t) {
        if (ec == bhttp::error::need_buffer) ec = {};
        if (ec) return self->fail(self->errorStatus(ec, "read body"));
        size_t n = self->piece.size() - self->parser->get().body().size;
        if (n == 0) return self->readBody();
        self->piece.resize(n);
        if (self->body_left != kUnknownLength)
          self->body_left -= std::min<uint64_t>(self->body_left, n);
        // Read on once the receiver asks for more (it may ask from another
        // thread: come back to this loop).
        self->cb.on_data(std::move(self->piece),
                         [self] { asio::post(self->impl->ioc, [self] { self->readBody(); }); });
        self->piece = std::string();
      });
    });
  }

  void finish() {
    bool keep = parser->get().keep_alive();
    parser.reset();
    if (keep) impl->putIdle(pool_key, conn);
    conn.reset();
    auto done = std::move(cb.on_done);
    cb = {};
    if (done) done(Status::ok());
  }
};

}  // namespace

BeastOriginClient::BeastOriginClient(asio::io_context& ioc, const OriginConfig& config)
    : impl_(std::make_shared<Impl>(ioc, config)) {}

BeastOriginClient::~BeastOriginClient() = default;

void BeastOriginClient::reconfigure(const OriginConfig& config) {
  OriginConfig next = config;
  next.tls_verify = impl_->config.tls_verify;
  next.tls_ca_file = impl_->config.tls_ca_file;
  impl_->config = std::move(next);
}

void BeastOriginClient::fetch(OriginRequest request, Callbacks callbacks) {
  const Upstream* up = impl_->pick(request.authority);
  if (up == nullptr) {
    callbacks.on_head(Status::unavailable("no origin configured for host " + request.authority));
    callbacks.on_done(Status(StatusCode::kUnavailable, ErrorSource::kOrigin,
                             "no origin for " + request.authority));
    return;
  }
  auto ex = std::make_shared<Exchange>();
  ex->impl = impl_;
  ex->upstream = *up;
  ex->pool_key = (up->tls ? "tls:" : "") + up->host + ":" + up->port;
  ex->request = std::move(request);
  ex->cb = std::move(callbacks);
  ex->start();
}

}  // namespace tern::edge::origin
