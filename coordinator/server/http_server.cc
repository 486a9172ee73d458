#include "coordinator/server/http_server.h"

#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <thread>
#include <type_traits>
#include <vector>

#include "common/log.h"
#include "common/net/listen.h"
#include "common/thread_name.h"

namespace tern::coordinator {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

// Plain (Stream = beast::tcp_stream) or TLS (beast::ssl_stream of one).
template <class Stream>
class Connection : public std::enable_shared_from_this<Connection<Stream>> {
 public:
  Connection(
      tcp::socket socket, HttpApi* api, const HttpServerOptions& options,
      std::shared_ptr<std::atomic<size_t>> open) requires std::is_same_v<Stream, beast::tcp_stream>
      : stream_(std::move(socket)), api_(api), options_(options), open_(std::move(open)) {}
  Connection(tcp::socket socket, asio::ssl::context& tls, HttpApi* api,
             const HttpServerOptions& options,
             std::shared_ptr<std::atomic<size_t>>
                 open) requires(!std::is_same_v<Stream, beast::tcp_stream>)
      : stream_(std::move(socket), tls), api_(api), options_(options), open_(std::move(open)) {}
  ~Connection() { --*open_; }

  void start() {
    asio::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
      if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
        self->read();
      } else {
        self->lowest().expires_after(std::chrono::milliseconds(self->options_.read_timeout_ms));
        self->stream_.async_handshake(asio::ssl::stream_base::server, [self](beast::error_code ec) {
          if (ec) return self->close();
          self->read();
        });
      }
    });
  }

 private:
  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }
  auto shared_from_this() { return std::enable_shared_from_this<Connection>::shared_from_this(); }

  void read() {
    parser_.emplace();
    parser_->body_limit(options_.body_limit_bytes);
    parser_->header_limit(64 * 1024);
    lowest().expires_after(
        std::chrono::milliseconds(first_ ? options_.read_timeout_ms : options_.idle_timeout_ms));
    first_ = false;
    bhttp::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->onRead(ec); });
  }

  void onRead(beast::error_code ec) {
    if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset) {
      return close();
    }
    if (ec) {
      int status = ec == bhttp::error::body_limit     ? 413
                   : ec == bhttp::error::header_limit ? 431
                                                      : 400;
      TERN_LOG(kInfo, "bad request", {{"error", ec.message()}});
      ApiResponse r{status,
                    "application/json",
                    "{\"error\":{\"code\":\"bad_request\",\"message\":\"" + ec.message() + "\"}}\n",
                    {}};
      keep_alive_ = false;
      return write(std::move(r));
    }
    auto& req = parser_->get();
    keep_alive_ = req.keep_alive();
    ApiRequest ar;
    ar.method = std::string(req.method_string());
    ar.target = std::string(req.target());
    ar.authorization = std::string(req[bhttp::field::authorization]);
    ar.idempotency_key = std::string(req["Idempotency-Key"]);
    {
      beast::error_code pec;
      auto ep = lowest().socket().remote_endpoint(pec);
      if (!pec) ar.peer = ep.address().to_string() + ":" + std::to_string(ep.port());
    }
    ar.body = std::move(req.body());
    head_ = req.method() == bhttp::verb::head;
    // The answer may come from another thread: hop back to this connection.
    lowest().expires_never();
    api_->handle(ar, [self = shared_from_this()](ApiResponse r) {
      asio::post(self->stream_.get_executor(),
                 [self, r = std::move(r)]() mutable { self->write(std::move(r)); });
    });
  }

  void write(ApiResponse r) {
    auto res = std::make_shared<bhttp::response<bhttp::string_body>>();
    res->version(11);
    res->result(static_cast<unsigned>(r.status));
    res->set(bhttp::field::server, "tern-coordinator");
    res->set(bhttp::field::content_type, r.content_type);
    res->set(bhttp::field::cache_control, "no-store");
    for (auto& [k, v] : r.headers) res->set(k, v);
    res->body() = std::move(r.body);
    res->prepare_payload();
    if (head_) res->body().clear();
    res->keep_alive(keep_alive_);
    lowest().expires_after(std::chrono::milliseconds(options_.read_timeout_ms));
    if (head_) {
      auto sr = std::make_shared<bhttp::response_serializer<bhttp::string_body>>(*res);
      bhttp::async_write_header(stream_, *sr,
                                [self = shared_from_this(), res, sr](beast::error_code ec, size_t) {
                                  self->onWrite(ec);
                                });
      return;
    }
    bhttp::async_write(
        stream_, *res,
        [self = shared_from_this(), res](beast::error_code ec, size_t) { self->onWrite(ec); });
  }

  void onWrite(beast::error_code ec) {
    if (ec || !keep_alive_) return close();
    read();
  }

  void close() {
    // (A TLS close_notify is not waited for: the connection is done.)
    beast::error_code ec;
    lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
    lowest().socket().close(ec);
  }

  Stream stream_;
  HttpApi* api_;
  const HttpServerOptions& options_;
  std::shared_ptr<std::atomic<size_t>> open_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  bool keep_alive_ = true;
  bool head_ = false;
  bool first_ = true;
};

}  // namespace

struct HttpServer::Impl {
  HttpServerOptions options;
  HttpApi* api;
  asio::io_context io;
  std::unique_ptr<asio::ssl::context> tls;  // HTTPS when set
  tcp::acceptor acceptor{io};
  std::shared_ptr<std::atomic<size_t>> open = std::make_shared<std::atomic<size_t>>(0);
  std::vector<std::thread> threads;
  int port = 0;

  void accept() {
    acceptor.async_accept(asio::make_strand(io), [this](beast::error_code ec, tcp::socket s) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) {
        if (open->fetch_add(1) >= options.max_connections) {
          --*open;
          TERN_LOG(kWarn, "HTTP connection refused: server.max_connections reached",
                   {{"max_connections", std::to_string(options.max_connections)}});
          beast::error_code ignored;
          s.close(ignored);
        } else {
          if (tls) {
            std::make_shared<Connection<beast::ssl_stream<beast::tcp_stream>>>(std::move(s), *tls,
                                                                               api, options, open)
                ->start();
          } else {
            std::make_shared<Connection<beast::tcp_stream>>(std::move(s), api, options, open)
                ->start();
          }
        }
      }
      accept();
    });
  }
};

HttpServer::HttpServer(HttpServerOptions options, HttpApi* api) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->api = api;
}

HttpServer::~HttpServer() { stop(); }

Status HttpServer::start() {
  if (!impl_->options.tls_cert.empty()) {
    auto& ctx = impl_->tls = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                     asio::ssl::context::no_tlsv1_1);
    beast::error_code ec;
    ctx->use_certificate_chain_file(impl_->options.tls_cert, ec);
    if (ec)
      return Status::invalidArgument("http_tls.cert " + impl_->options.tls_cert + ": " +
                                     ec.message());
    ctx->use_private_key_file(impl_->options.tls_key, asio::ssl::context::pem, ec);
    if (ec)
      return Status::invalidArgument("http_tls.key " + impl_->options.tls_key + ": " +
                                     ec.message());
  }
  TERN_ASSIGN_OR_RETURN(auto ep, net::parseEndpoint(impl_->options.listen));
  TERN_RETURN_IF_ERROR(net::openAcceptor(impl_->acceptor, ep, false));
  impl_->port = impl_->acceptor.local_endpoint().port();
  impl_->accept();
  for (int i = 0; i < std::max(1, impl_->options.threads); ++i)
    impl_->threads.emplace_back([this] {
      setThreadName("http-api");
      impl_->io.run();
    });
  return Status::ok();
}

int HttpServer::port() const { return impl_->port; }

void HttpServer::stop() {
  if (impl_->threads.empty()) return;
  asio::post(impl_->io, [this] {
    beast::error_code ec;
    impl_->acceptor.close(ec);
  });
  impl_->io.stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
}

}  // namespace tern::coordinator
