#include "edge/server/server.h"

#include <openssl/ssl.h>
#include <sys/sendfile.h>
#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/socket_base.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <deque>
#include <functional>
#include <memory_resource>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/log.h"
#include "common/net/listen.h"
#include "common/thread_name.h"
#include "edge/http/request_head.h"
#include "edge/server/h2_connection.h"
#include "edge/server/tls_stream.h"

namespace tern::edge::server {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

// Reason phrase for a status line (RFC 9112 4: optional, informative).
std::string_view reasonPhrase(int status) {
  if (status == 103) return "Early Hints";  // RFC 8297, unknown to Beast 1.81
  auto r = bhttp::obsolete_reason(static_cast<bhttp::status>(status));
  std::string_view text(r.data(), r.size());
  return text == "<unknown-status>" ? std::string_view() : text;
}

}  // namespace

// A connection a graceful stop must reach at once: a keep-alive connection
// waiting for its next request (closed), an HTTP/2 connection (wound down).
// Its loop lists it without an allocation: a connection goes on and off the
// list with each request it waits for.
struct StopHook {
  StopHook* prev = nullptr;
  StopHook* next = nullptr;
  bool listed = false;
  virtual ~StopHook() = default;
  virtual void onStop() = 0;
};

struct StopList {
  StopHook* head = nullptr;
  void add(StopHook* h) {
    if (h->listed) return;
    h->listed = true;
    h->prev = nullptr;
    h->next = head;
    if (head) head->prev = h;
    head = h;
  }
  void remove(StopHook* h) {
    if (!h->listed) return;
    h->listed = false;
    if (h->prev) h->prev->next = h->next;
    if (h->next) h->next->prev = h->prev;
    if (head == h) head = h->next;
    h->prev = h->next = nullptr;
  }
  // Takes every hook off the list and calls it (a hook may add itself again).
  void fire() {
    std::vector<StopHook*> all;
    for (StopHook* h = head; h; h = h->next) all.push_back(h);
    for (StopHook* h : all) remove(h);
    for (StopHook* h : all) h->onStop();
  }
};

struct Loop {
  // Loop thread only. Declared first, destroyed last: sessions destroyed
  // with the io_context's pending handlers still find it.
  StopList stop_hooks;
  asio::io_context ioc{1};
  tcp::acceptor acceptor{ioc};
  tcp::acceptor tls_acceptor{ioc};
  std::unique_ptr<origin::BeastOriginClient> origin;
  cache::FlowContext ctx;
  std::thread thread;
};

// The settings a configuration reload may change while connections are
// open: read on the loops at each use (relaxed: each value stands alone).
struct LiveSettings {
  std::atomic<size_t> max_connections;
  std::atomic<size_t> header_limit_bytes;
  std::atomic<size_t> max_header_fields;
  std::atomic<uint64_t> body_limit_bytes;
  std::atomic<int64_t> header_timeout_ms;
  std::atomic<int64_t> idle_timeout_ms;
  std::atomic<int64_t> body_timeout_ms;
  std::atomic<bool> access_log;

  void set(const ServerConfig& c) {
    max_connections = c.max_connections;
    header_limit_bytes = c.header_limit_bytes;
    max_header_fields = c.max_header_fields;
    body_limit_bytes = c.body_limit_bytes;
    header_timeout_ms = c.header_timeout_ms;
    idle_timeout_ms = c.idle_timeout_ms;
    body_timeout_ms = c.body_timeout_ms;
    access_log = c.access_log;
  }
};

struct EdgeServer::Impl {
  ServerConfig config;
  LiveSettings live;
  AccessLog* access = nullptr;  // null: no access log
  origin::OriginConfig origins;
  cache::TieredStore* store;
  cache::FlowConfig flow;
  metrics::Registry* registry;
  admin::AdminState admin;
  cache::Collapser collapser, background;
  std::unique_ptr<cache::FlowMetrics> flow_metrics;
  std::unique_ptr<asio::thread_pool> pool;
  std::vector<std::unique_ptr<Loop>> loops;
  tcp::acceptor* admin_acceptor = nullptr;
  std::unique_ptr<tcp::acceptor> admin_acceptor_owned;
  std::atomic<size_t> connections{0};
  std::atomic<bool> stopping{false};
  int port = 0, admin_port = 0;
  metrics::Gauge* open_connections = nullptr;
  metrics::Counter* rejected_connections = nullptr;
  metrics::Counter* bad_requests = nullptr;
  metrics::Counter* sendfile_bytes = nullptr;  // tern_edge_sendfile_bytes_total
  metrics::Counter* connections_h1 = nullptr;  // tern_edge_connections_total{protocol}
  metrics::Counter* connections_h2 = nullptr;
  metrics::Counter* h2_connection_errors = nullptr;
  std::mutex done_mu;
  std::condition_variable done_cv;
  bool done = false;

  std::unique_ptr<asio::ssl::context> tls;
  int tls_port = 0;
  void accept(Loop& loop);
  void acceptTls(Loop& loop);
  void acceptAdmin();
};

// ---- client session ----

// A TCP stream bound to the concrete io_context executor: no type-erased
// executor to copy on every asynchronous operation of the hit path.
using LoopStream = beast::basic_stream<tcp, asio::io_context::executor_type>;
using LoopSocket = asio::basic_stream_socket<tcp, asio::io_context::executor_type>;

LoopSocket toLoopSocket(asio::io_context& ioc, tcp::socket socket) {
  LoopSocket out(ioc.get_executor());
  beast::error_code ec;
  auto protocol = socket.local_endpoint(ec).protocol();
  out.assign(ec ? tcp::v4() : protocol, socket.release(), ec);
  return out;
}

// One client connection, plain or TLS. `Stream` is LoopStream or
// TlsStream<LoopStream>.
template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>>, public StopHook {
 public:
  template <class... TlsArgs>
  Session(tcp::socket socket, Loop& loop, EdgeServer::Impl& srv, TlsArgs&... tls)
      : stream_(toLoopSocket(loop.ioc, std::move(socket)), tls...), loop_(loop), srv_(srv) {
    beast::error_code ec;
    auto ep = lowest().socket().remote_endpoint(ec);
    if (!ec) client_ip_ = ep.address().to_string();
    lowest().socket().set_option(tcp::no_delay(true), ec);
    // Unparsed bytes held at most: a request head within header_limit, or a
    // chunk header line (the body goes to the parser as it arrives).
    buffer_.max_size(srv_.live.header_limit_bytes.load(std::memory_order_relaxed) +
                     kReadSlackBytes);
    srv_.connections++;
    srv_.open_connections->add(1);
  }
  ~Session() {
    loop_.stop_hooks.remove(this);
    srv_.connections--;
    srv_.open_connections->add(-1);
  }

  void start() {
    if constexpr (kTls) {
      lowest().expires_after(
          std::chrono::milliseconds(srv_.live.header_timeout_ms.load(std::memory_order_relaxed)));
      auto self = this->shared_from_this();
      stream_.async_handshake(asio::ssl::stream_base::server, [self](beast::error_code ec) {
        if (ec) {
          TERN_LOG(kDebug, "TLS handshake failed",
                   {{"client", self->client_ip_}, {"reason", ec.message()}});
          return self->lowest().close();
        }
        if (self->negotiatedH2()) return self->becomeH2({});
        self->srv_.connections_h1->inc();
        self->read(true);
      });
    } else if (srv_.config.h2c) {
      sniff();
    } else {
      srv_.connections_h1->inc();
      read(true);
    }
  }

  void interim(int status, const http::Fields& headers) {
    if (started_ || http10_) return;
    auto text = std::make_shared<std::string>("HTTP/1.1 " + std::to_string(status) + " " +
                                              std::string(reasonPhrase(status)) + "\r\n");
    for (const auto& f : headers) {
      if (!http::hasLineBreak(f.value)) text->append(f.name + ": " + f.value + "\r\n");
    }
    text->append("\r\n");
    // One write at a time on a stream: interim responses queue up, in the
    // order the origin sent them.
    interim_queue_.push_back(std::move(text));
    if (interim_queue_.size() == 1) writeInterim();
  }

  void writeInterim() {
    auto self = this->shared_from_this();
    auto text = interim_queue_.front();
    asio::async_write(stream_, asio::buffer(*text), [self, text](beast::error_code ec, size_t) {
      self->interim_queue_.pop_front();
      if (ec) return self->close();
      if (!self->interim_queue_.empty()) return self->writeInterim();
      if (self->deferred_) {
        auto run = std::move(self->deferred_);
        self->deferred_ = nullptr;
        run();
      }
    });
  }

  void respond(int status, http::Fields headers, std::unique_ptr<cache::BodySource> body,
               std::optional<uint64_t> length) {
    if (!interim_queue_.empty()) {
      // One write at a time on a stream: the final response waits for the hints.
      auto held = std::make_shared<std::unique_ptr<cache::BodySource>>(std::move(body));
      deferred_ = [this, status, headers = std::move(headers), held, length]() mutable {
        respond(status, std::move(headers), std::move(*held), length);
      };
      return;
    }
    started_ = true;
    if (length || !body) return respondFramed(status, headers, std::move(body), length);
    auto res = std::make_shared<bhttp::response<bhttp::buffer_body>>();
    res->version(11);
    res->result(static_cast<unsigned>(status));
    for (const auto& f : headers) res->insert(f.name, f.value);
    bool keep = keep_alive_ && !srv_.stopping.load();
    if (srv_.live.access_log.load(std::memory_order_relaxed)) {
      for (const auto& f : headers) {
        if (f.name == "Cache-Status") cache_status_ = f.value;
      }
    }
    res->keep_alive(keep);
    if (length) {
      res->content_length(*length);
    } else if (body) {
      res->chunked(true);
    }
    res->body().data = nullptr;
    res->body().more = body != nullptr;
    auto sr = std::make_shared<bhttp::response_serializer<bhttp::buffer_body>>(*res);
    auto self = this->shared_from_this();
    if (const int64_t t = srv_.live.body_timeout_ms.load(std::memory_order_relaxed); t > 0)
      lowest().expires_after(std::chrono::milliseconds(t));
    std::shared_ptr<cache::BodySource> src(std::move(body));
    if (src && !head_only_) {
      // The head goes out with the first chunk of the body: one write (one
      // system call) for a small response.
      bytes_ = 0;
      return pump(res, sr, src, keep, status);
    }
    bhttp::async_write_header(stream_, *sr,
                              [self, res, sr, src, keep, status](beast::error_code ec, size_t) {
                                if (ec) return self->close();
                                if (!src || self->head_only_) {
                                  self->bytes_ = 0;
                                  return self->finished(keep, status);
                                }
                                self->pump(res, sr, src, keep, status);
                              });
  }

  // A stored response: its fields are written from the entry, no copy.
  void respondStored(int status, std::shared_ptr<const storage::EntryMeta> stored,
                     http::Fields added, std::unique_ptr<cache::BodySource> body,
                     std::optional<uint64_t> length) {
    if (!interim_queue_.empty()) {
      auto held = std::make_shared<std::unique_ptr<cache::BodySource>>(std::move(body));
      deferred_ = [this, status, stored = std::move(stored), added = std::move(added), held,
                   length]() mutable {
        respondStored(status, std::move(stored), std::move(added), std::move(*held), length);
      };
      return;
    }
    started_ = true;
    respondFramed(status, added, std::move(body), length, &stored->headers);
    spare_fields_ = std::move(added);  // (written over by the next stored response)
  }

 private:
  // A response whose length is known (or that has no body): the head is
  // formatted once into one buffer and goes out with the first body chunk
  // in a single gathered write; the rest of the body follows chunk by chunk.
  // Chunked responses take the Beast serializer path above.
  // The head and the body source live in the session (one response at a
  // time), so a response allocates neither a head buffer nor a shared owner.
  // `stored`: a stored response's fields, written first (those that are sent).
  void respondFramed(int status, const http::Fields& headers,
                     std::unique_ptr<cache::BodySource> body, std::optional<uint64_t> length,
                     const http::Fields* stored = nullptr) {
    const bool keep = keep_alive_ && !srv_.stopping.load();
    std::string& head = head_;
    head.clear();
    head.append("HTTP/1.1 ");
    char num[24];
    head.append(num, std::to_chars(num, num + sizeof num, status).ptr).push_back(' ');
    head.append(reasonPhrase(status)).append("\r\n");
    const bool logged = srv_.live.access_log.load(std::memory_order_relaxed);
    if (stored) {
      for (const auto& f : *stored) {
        if (!cache::storedFieldIsSent(f.name) || http::hasLineBreak(f.value)) continue;
        head.append(f.name).append(": ").append(f.value).append("\r\n");
      }
    }
    for (const auto& f : headers) {
      if (http::hasLineBreak(f.value)) continue;  // never split a head
      if (logged && f.name == "Cache-Status") cache_status_ = f.value;
      head.append(f.name).append(": ").append(f.value).append("\r\n");
    }
    if (length) {
      head.append("Content-Length: ")
          .append(num, std::to_chars(num, num + sizeof num, *length).ptr)
          .append("\r\n");
    }
    if (!keep) head.append("Connection: close\r\n");
    head.append("\r\n");
    bytes_ = 0;
    auto self = this->shared_from_this();
    lowest().expires_after(
        std::chrono::milliseconds(srv_.live.body_timeout_ms.load(std::memory_order_relaxed)));
    if (!body || head_only_) {
      return asio::async_write(stream_, asio::buffer(head_),
                               [self, keep, status](beast::error_code ec, size_t) {
                                 if (ec) return self->close();
                                 self->finished(keep, status);
                               });
    }
    body_ = std::move(body);
    if constexpr (!kTls) {
      if (body_->takeFile(&file_)) return sendFile(keep, status);
    }
    pull([self, keep, status](Result<std::string_view> chunk) {
      if (!chunk.ok()) {
        TERN_LOG(kWarn, "response body failed", {{"reason", chunk.status().toString()}});
        return self->close();
      }
      std::array<asio::const_buffer, 2> bufs = {asio::buffer(self->head_),
                                                asio::buffer(chunk->data(), chunk->size())};
      self->bytes_ += chunk->size();
      const bool last = chunk->empty();
      asio::async_write(self->stream_, bufs,
                        [self, keep, status, last](beast::error_code ec, size_t) {
                          if (ec) return self->close();
                          if (last) return self->finished(keep, status);
                          self->pumpRaw(keep, status);
                        });
    });
  }

  // A body in a file (a large memory-tier body, kept in a sealed memfd, or
  // a checked disk-tier body in the page cache, pinned by its reader):
  // the head, then sendfile(2) from the page cache, no copy through user
  // space. Waits for the socket when it is full; the body timeout runs from
  // each bit of progress; a turn sends at most kFileTurnBytes, then lets the
  // loop's other connections go first.
  // (sendfile cannot take MSG_NOSIGNAL: a peer gone while it writes raises
  // SIGPIPE, which the edge's main ignores.)
  void sendFile(bool keep, int status) {
    ++file_gen_;
    auto& sock = lowest().socket();
    beast::error_code ec;
    sock.native_non_blocking(true, ec);
    if (ec) return close();
    // The head goes with the start of the body (MSG_MORE): one segment.
    const ssize_t n =
        ::send(sock.native_handle(), head_.data(), head_.size(), MSG_MORE | MSG_NOSIGNAL);
    if (n == static_cast<ssize_t>(head_.size())) return pumpFile(keep, status);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return close();
    const size_t sent = n > 0 ? static_cast<size_t>(n) : 0;
    auto self = this->shared_from_this();
    asio::async_write(stream_, asio::buffer(head_.data() + sent, head_.size() - sent),
                      [self, keep, status](beast::error_code wec, size_t) {
                        if (wec) return self->close();
                        self->pumpFile(keep, status);
                      });
  }

  void pumpFile(bool keep, int status) {
    auto& sock = lowest().socket();
    uint64_t turn = 0;
    while (file_.length > 0) {
      if (turn >= kFileTurnBytes) {
        return asio::post(sock.get_executor(), [self = this->shared_from_this(), keep, status] {
          self->pumpFile(keep, status);
        });
      }
      off_t offset = static_cast<off_t>(file_.offset);
      const ssize_t n =
          ::sendfile(sock.native_handle(), file_.fd, &offset,
                     static_cast<size_t>(std::min(file_.length, kFileTurnBytes - turn)));
      if (n > 0) {
        file_.offset += static_cast<uint64_t>(n);
        file_.length -= static_cast<uint64_t>(n);
        bytes_ += static_cast<uint64_t>(n);
        turn += static_cast<uint64_t>(n);
        srv_.sendfile_bytes->inc(static_cast<uint64_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return waitToSendFile(keep, status);
      return close();  // the peer is gone (or the file ended early: never, it is sealed)
    }
    ++file_gen_;  // (a timeout already queued is for a body that is out)
    if (file_timer_) file_timer_->cancel();
    finished(keep, status);
  }

  void waitToSendFile(bool keep, int status) {
    if (const int64_t t = srv_.live.body_timeout_ms.load(std::memory_order_relaxed); t > 0) {
      if (!file_timer_) file_timer_.emplace(loop_.ioc);
      file_timer_->expires_after(std::chrono::milliseconds(t));
      file_timer_->async_wait(
          [weak = this->weak_from_this(), gen = file_gen_](beast::error_code ec) {
            auto self = weak.lock();
            // The client stopped reading this body (not one sent since).
            if (!ec && self && self->file_gen_ == gen) self->lowest().close();
          });
    }
    lowest().socket().async_wait(tcp::socket::wait_write, [self = this->shared_from_this(), keep,
                                                           status](beast::error_code ec) {
      if (ec) return self->close();
      self->pumpFile(keep, status);
    });
  }

  // The body's next chunk to `f`: at once when it is there (no callback
  // object is made), else when the source has it.
  template <class F>
  void pull(F&& f) {
    if (auto chunk = body_->tryNext()) return f(std::move(*chunk));
    body_->next(std::forward<F>(f));
  }

  void pumpRaw(bool keep, int status) {
    auto self = this->shared_from_this();
    pull([self, keep, status](Result<std::string_view> chunk) {
      if (!chunk.ok()) {
        TERN_LOG(kWarn, "response body failed", {{"reason", chunk.status().toString()}});
        return self->close();
      }
      if (chunk->empty()) return self->finished(keep, status);
      self->bytes_ += chunk->size();
      self->lowest().expires_after(std::chrono::milliseconds(
          self->srv_.live.body_timeout_ms.load(std::memory_order_relaxed)));
      asio::async_write(self->stream_, asio::buffer(chunk->data(), chunk->size()),
                        [self, keep, status](beast::error_code ec, size_t) {
                          if (ec) return self->close();
                          self->pumpRaw(keep, status);
                        });
    });
  }

  void pump(std::shared_ptr<bhttp::response<bhttp::buffer_body>> res,
            std::shared_ptr<bhttp::response_serializer<bhttp::buffer_body>> sr,
            std::shared_ptr<cache::BodySource> src, bool keep, int status) {
    auto self = this->shared_from_this();
    src->next([self, res, sr, src, keep, status](Result<std::string_view> chunk) {
      if (!chunk.ok()) {
        // Headers are out: the only honest signal left is closing early.
        TERN_LOG(kWarn, "response body failed", {{"reason", chunk.status().toString()}});
        return self->close();
      }
      res->body().data = chunk->empty() ? nullptr : const_cast<char*>(chunk->data());
      res->body().size = chunk->size();
      res->body().more = !chunk->empty();
      self->bytes_ += chunk->size();
      const bool last = chunk->empty();
      self->lowest().expires_after(std::chrono::milliseconds(
          self->srv_.live.body_timeout_ms.load(std::memory_order_relaxed)));
      bhttp::async_write(self->stream_, *sr,
                         [self, res, sr, src, keep, status, last](beast::error_code ec, size_t) {
                           if (ec == bhttp::error::need_buffer) ec = {};
                           if (ec) return self->close();
                           if (last || sr->is_done()) return self->finished(keep, status);
                           self->pump(res, sr, src, keep, status);
                         });
    });
  }

  void finished(bool keep, int status) {
    body_.reset();  // (what it holds of the store or of a fetch, released now)
    if (srv_.live.body_timeout_ms.load(std::memory_order_relaxed) > 0) lowest().expires_never();
    if (srv_.access && srv_.live.access_log.load(std::memory_order_relaxed) &&
        srv_.access->sampled()) {
      srv_.access->record({client_ip_, method_, host_, target_, http10_ ? "HTTP/1.0" : "HTTP/1.1",
                           cache_status_, status, bytes_, steadyNowUs() - started_us_});
    }
    if (!keep) return close();
    read(false);
  }

  void read(bool first) {
    // What the access log says of a response belongs to its own request.
    method_.clear();
    target_.clear();
    host_.clear();
    cache_status_.clear();
    http10_ = false;
    parser_.reset();  // (before its arena is emptied)
    head_arena_.release();
    parser_.emplace(std::piecewise_construct, std::make_tuple(),
                    std::make_tuple(std::pmr::polymorphic_allocator<char>(&head_arena_)));
    parser_->header_limit(
        static_cast<uint32_t>(srv_.live.header_limit_bytes.load(std::memory_order_relaxed)));
    parser_->body_limit(srv_.live.body_limit_bytes.load(std::memory_order_relaxed));
    chunk_ext_too_long_ = false;
    parser_->on_chunk_header(on_chunk_header_);
    const bool idle = !first && buffer_.size() == 0;
    // A response that began before a graceful stop was sent as keep-alive;
    // once it is out the connection would wait idle past the stop's sweep
    // of idle connections (which ran on this loop before it got here).
    if (idle && srv_.stopping.load()) return close();
    lowest().expires_after(std::chrono::milliseconds(
        idle ? srv_.live.idle_timeout_ms.load(std::memory_order_relaxed)
             : srv_.live.header_timeout_ms.load(std::memory_order_relaxed)));
    if (idle) {
      if constexpr (kTls) stream_.releaseBuffers();  // a kept-alive connection holds none
      // What a request with a body left is given back: the read buffer's
      // room (freed whole; the next head is read as on a new connection)
      // and a kept exchange holding a large body or large fields.
      if (buffer_.capacity() > kHeadReadBytes) buffer_.shrink_to_fit();
      if (exchange_ && keptBytes(exchange_->request) > kKeptRequestBytes) exchange_.reset();
      loop_.stop_hooks.add(this);
    }
    auto self = this->shared_from_this();
    bhttp::async_read_header(stream_, buffer_, *parser_, [self](beast::error_code ec, size_t) {
      self->leaveIdle();
      if (ec || self->parser_->is_done()) return self->onRead(ec);
      // Expect: 100-continue (RFC 9110 10.1.1): invite the body, then read it.
      auto expect = self->parser_->get()[bhttp::field::expect];
      if (http::iequals(http::trim(std::string_view(expect.data(), expect.size())),
                        "100-continue") &&
          self->parser_->get().version() == 11) {
        static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        return asio::async_write(self->stream_, asio::buffer(kContinue),
                                 [self](beast::error_code wec, size_t) {
                                   if (wec) return self->close();
                                   self->readBody();
                                 });
      }
      self->readBody();
    });
  }

  void readBody() {
    // Beast reads as much as the buffer has room for (at least 512 bytes):
    // sized by the head, it would take a body 512 bytes per read.
    if (buffer_.capacity() < kBodyReadBytes && buffer_.max_size() >= kBodyReadBytes)
      buffer_.reserve(kBodyReadBytes);
    auto self = this->shared_from_this();
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self](beast::error_code ec, size_t) { self->onRead(ec); });
  }

  void leaveIdle() { loop_.stop_hooks.remove(this); }

  // A graceful stop: the wait for the next request ends (its read is
  // cancelled and the connection closes).
  void onStop() override { lowest().cancel(); }

  void onRead(beast::error_code ec) {
    if (ec == bhttp::error::end_of_stream || ec == asio::error::connection_reset ||
        ec == asio::error::eof || ec == asio::error::operation_aborted) {
      return close();  // (aborted: an idle keep-alive closed by a graceful stop)
    }
    // TLS broken (a fatal alert, a bad record): nothing can be answered.
    if (ec.category() == asio::error::get_ssl_category() ||
        ec == asio::ssl::error::stream_truncated)
      return close();
    if (ec == beast::error::timeout) {
      // The stream is closed by the timeout: log and drop (as nginx and
      // Varnish do), nothing can be written any more.
      if (parser_->got_some()) {
        srv_.bad_requests->inc();
        TERN_LOG(kInfo, "client timed out sending a request", {{"client", client_ip_}});
      }
      return close();
    }
    if (ec == bhttp::error::header_limit) return reject(431, "request header fields too large");
    if (ec == bhttp::error::body_limit) return reject(413, "content too large");
    if (chunk_ext_too_long_) return reject(400, "bad request: chunk extension too long");
    if (ec == bhttp::error::buffer_overflow)
      return reject(400, "bad request: chunk header too long");
    if (ec) return reject(400, "bad request: " + ec.message());
    auto& msg = parser_->get();
    http::RequestHead& head = head_in_;  // (its list keeps its room from request to request)
    head.version = msg.version();
    head.chunked = msg.chunked();
    head.fields.clear();
    for (const auto& f : msg) head.fields.emplace_back(f.name_string(), f.value());
    // The request and its responder share one allocation, which the
    // response gives back to the session: the next request on the
    // connection is written over it (its strings and field list keep their
    // room) once nothing else holds it. With a count of one the transaction
    // and everything that could reach it are gone (a weak reference to the
    // responder lives only in callbacks the transaction holds), so the count
    // cannot go up under us; the fence orders our writes after the last
    // holder's (whose release of it was a release).
    std::shared_ptr<Exchange> exchange = std::move(exchange_);
    if (exchange && exchange.use_count() == 1) {
      std::atomic_thread_fence(std::memory_order_acquire);
    } else {
      exchange = std::make_shared<Exchange>();
      exchange->responder.exchange = exchange;
    }
    std::shared_ptr<cache::Request> req(exchange, &exchange->request);
    if (auto bad = http::checkRequestHead(
            head, srv_.live.max_header_fields.load(std::memory_order_relaxed), &req->headers))
      return reject(bad->status, bad->reason);
    req->protocol = cache::Protocol::kHttp1;
    req->method.assign(msg.method_string());
    req->target.assign(msg.target());
    req->client_ip.assign(client_ip_);
    req->scheme.assign(kTls ? "https" : "http");
    req->received_ms = wallNowMs();
    req->body = std::move(msg.body());
    keep_alive_ = msg.keep_alive();
    started_ = false;
    http10_ = msg.version() == 10;
    head_only_ = req->method == "HEAD";
    method_ = req->method;
    target_ = req->target;
    if (srv_.access) {
      auto host = http::findField(req->headers, "host");
      host_ = host ? std::string(*host) : std::string();
    }
    started_us_ = steadyNowUs();
    lowest().expires_never();
    // The responder holds the session while the flow works on the request
    // (a miss has no I/O pending on the session itself); released once the
    // response is handed over.
    exchange->responder.session = this->shared_from_this();
    std::shared_ptr<cache::Responder> responder(exchange, &exchange->responder);
    cache::handleRequest(loop_.ctx, std::move(req), std::move(responder), &exchange->transaction);
  }

  // A request and its responder, in one allocation (see onRead).
  struct Exchange;
  struct SessionResponder final : cache::Responder {
    std::shared_ptr<Session> session;  // until the response is handed over
    std::weak_ptr<Exchange> exchange;  // given back to the session with it
    void respond(int status, http::Fields headers, std::unique_ptr<cache::BodySource> body,
                 std::optional<uint64_t> length) override {
      if (auto s = handOver()) s->respond(status, std::move(headers), std::move(body), length);
    }
    void respondStored(int status, std::shared_ptr<const storage::EntryMeta> stored,
                       http::Fields added, std::unique_ptr<cache::BodySource> body,
                       std::optional<uint64_t> length) override {
      if (auto s = handOver())
        s->respondStored(status, std::move(stored), std::move(added), std::move(body), length);
    }
    void interim(int status, http::Fields headers) override {
      if (session) session->interim(status, headers);
    }
    http::Fields recycledFields() override {
      return session ? std::exchange(session->spare_fields_, {}) : http::Fields{};
    }
    std::shared_ptr<Session> handOver() {
      auto s = std::move(session);
      if (s) s->exchange_ = exchange.lock();
      return s;
    }
  };
  struct Exchange {
    cache::Request request;
    SessionResponder responder;
    cache::TransactionSlot transaction;  // its transactions are built here
  };

  void reject(int status, const std::string& why) {
    srv_.bad_requests->inc();
    lingering_ = true;
    started_us_ = steadyNowUs();
    TERN_LOG(kInfo, "rejected request",
             {{"client", client_ip_}, {"status", std::to_string(status)}, {"reason", why}});
    keep_alive_ = false;
    head_only_ = false;
    std::string body = std::to_string(status) + " " + why + "\n";
    respond(status, {{"Content-Type", "text/plain"}, {"Connection", "close"}},
            cache::stringSource(body), body.size());
  }

  void close() {
    if (lingering_) return lingerClose();
    beast::error_code ec;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
    lowest().close();
  }

  // After an error response the client may still be sending: closing with
  // unread data would reset the connection and destroy our response in
  // flight. Shut down our side, drain for a moment, then close (as nginx's
  // lingering_close does).
  void lingerClose() {
    lingering_ = false;
    beast::error_code ec;
    lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
    lowest().expires_after(std::chrono::seconds(2));
    drain();
  }
  void drain() {
    auto self = this->shared_from_this();
    auto scratch = std::make_shared<std::array<char, 16384>>();
    lowest().async_read_some(asio::buffer(*scratch), [self, scratch](beast::error_code ec, size_t) {
      if (ec) {
        self->lowest().close();
        return;
      }
      self->drain();
    });
  }

  // ALPN chose "h2" in the TLS handshake.
  bool negotiatedH2() {
    if constexpr (kTls) {
      const unsigned char* proto = nullptr;
      unsigned len = 0;
      SSL_get0_alpn_selected(stream_.native_handle(), &proto, &len);
      return len == 2 && std::memcmp(proto, "h2", 2) == 0;
    }
    return false;
  }

  // Cleartext HTTP/2 with prior knowledge (RFC 9113 3.3): the connection
  // starts with the client preface, which no HTTP/1.1 request does. Bytes
  // are read until they tell; either way they stay for the protocol chosen.
  void sniff(bool first = true) {
    static constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    if (first) {  // one header timeout for the whole preface, however it trickles in
      lowest().expires_after(
          std::chrono::milliseconds(srv_.live.header_timeout_ms.load(std::memory_order_relaxed)));
    }
    auto self = this->shared_from_this();
    stream_.async_read_some(buffer_.prepare(4096), [self](beast::error_code ec, size_t n) {
      if (ec) return self->close();
      self->buffer_.commit(n);
      std::string_view got(static_cast<const char*>(self->buffer_.data().data()),
                           self->buffer_.size());
      const size_t k = std::min(got.size(), kPreface.size());
      if (got.substr(0, k) != kPreface.substr(0, k)) {
        self->srv_.connections_h1->inc();
        return self->read(true);
      }
      if (got.size() < kPreface.size()) return self->sniff(false);
      self->becomeH2(std::string(got));
    });
  }

  void becomeH2(std::string received);

  static constexpr bool kTls = !std::is_same_v<Stream, LoopStream>;
  static constexpr size_t kReadSlackBytes = 64 * 1024;
  // Room of the read buffer past which an idle connection gives it back,
  // and the room it takes while a request body comes.
  static constexpr size_t kHeadReadBytes = 4096;
  static constexpr size_t kBodyReadBytes = 16 * 1024;
  // Memory an idle connection may keep in its last request for the next.
  static constexpr size_t kKeptRequestBytes = 16 * 1024;
  static size_t keptBytes(const cache::Request& r) {
    size_t n = r.body.capacity() + r.target.capacity();
    for (const auto& f : r.headers) n += f.name.capacity() + f.value.capacity();
    return n;
  }
  // Chunk extensions carry nothing the edge uses; a long one is an attack
  // (CVE-2024-22019 in Node.js), refused past this.
  static constexpr size_t kMaxChunkExtensionBytes = 4096;
  LoopStream& lowest() { return beast::get_lowest_layer(stream_); }

  Stream stream_;
  beast::flat_buffer buffer_;
  bool chunk_ext_too_long_ = false;
  std::function<void(uint64_t, std::string_view, beast::error_code&)> on_chunk_header_ =
      [this](uint64_t, std::string_view extensions, beast::error_code& ec) {
        if (extensions.size() > kMaxChunkExtensionBytes) {
          chunk_ext_too_long_ = true;
          ec = bhttp::error::bad_chunk_extension;
        }
      };
  Loop& loop_;

  EdgeServer::Impl& srv_;
  // Beast's parsed request head (method, target, fields) lives in an arena
  // of the connection: 1 KiB inside the session (as nginx's
  // client_header_buffer_size), the heap only for a larger head; emptied
  // between requests, so a request's head costs no allocation.
  std::array<std::byte, 1024> head_arena_buffer_;
  std::pmr::monotonic_buffer_resource head_arena_{
      head_arena_buffer_.data(), head_arena_buffer_.size(), std::pmr::new_delete_resource()};
  std::optional<bhttp::request_parser<bhttp::string_body, std::pmr::polymorphic_allocator<char>>>
      parser_;
  bool keep_alive_ = true;
  bool head_only_ = false;
  bool lingering_ = false;
  bool started_ = false;  // the final response of the current request began
  bool http10_ = false;
  std::deque<std::shared_ptr<std::string>> interim_queue_;  // the first is being written
  std::function<void()> deferred_;
  http::RequestHead head_in_;                // the request head being checked (views)
  std::shared_ptr<Exchange> exchange_;       // the last request's, given back with its response
  http::Fields spare_fields_;                // a stored response's added fields, for the next
  std::string head_;                         // the response head being written
  std::unique_ptr<cache::BodySource> body_;  // the body being written (respondFramed)
  storage::FileRegion file_;                 // what is left of a body sent from a file
  std::optional<asio::steady_timer> file_timer_;  // the body timeout while sendfile waits
  uint64_t file_gen_ = 0;                         // which file body the timer is for
  static constexpr uint64_t kFileTurnBytes = 2 << 20;
  std::string client_ip_, method_, target_, host_, cache_status_;
  uint64_t bytes_ = 0;
  int64_t started_us_ = 0;
};

// ---- HTTP/2 session ----

// One HTTP/2 connection: reads into H2Connection, writes what it gives out,
// one write at a time. The stream's timer is set after each read or write:
// the idle timeout while no stream is open, the body timeout while a
// response is being sent (a peer that never opens its window is cut off),
// none while requests wait on their journeys.
template <class Stream>
class H2Session : public std::enable_shared_from_this<H2Session<Stream>>, public StopHook {
 public:
  H2Session(Stream stream, Loop& loop, EdgeServer::Impl& srv, std::string client_ip)
      : stream_(std::move(stream)), loop_(loop), srv_(srv), client_ip_(std::move(client_ip)) {
    srv_.connections++;
    srv_.open_connections->add(1);
    srv_.connections_h2->inc();
  }
  ~H2Session() {
    loop_.stop_hooks.remove(this);
    srv_.connections--;
    srv_.open_connections->add(-1);
  }

  void start(std::string received) {
    auto weak = this->weak_from_this();
    H2Settings settings;
    settings.max_concurrent_streams = srv_.config.h2_max_concurrent_streams;
    settings.max_header_list_bytes = srv_.config.h2_max_header_list_bytes;
    settings.initial_window_bytes = srv_.config.h2_initial_window_bytes;
    settings.max_header_fields = srv_.live.max_header_fields.load(std::memory_order_relaxed);
    settings.body_limit_bytes = srv_.live.body_limit_bytes.load(std::memory_order_relaxed);
    H2Connection::Hooks hooks;
    Loop* loop = &loop_;
    hooks.dispatch = [loop](std::shared_ptr<cache::Request> req,
                            std::shared_ptr<cache::Responder> responder) {
      cache::handleRequest(loop->ctx, std::move(req), std::move(responder));
    };
    hooks.output_ready = [weak] {
      if (auto s = weak.lock()) s->flush();
    };
    hooks.rejected = [srv = &srv_, ip = client_ip_](int status, const std::string& why) {
      srv->bad_requests->inc();
      TERN_LOG(kInfo, "rejected request",
               {{"client", ip}, {"status", std::to_string(status)}, {"reason", why}});
    };
    hooks.connection_error = [srv = &srv_, ip = client_ip_](const std::string& why) {
      srv->h2_connection_errors->inc();
      TERN_LOG(kInfo, "http/2 connection error", {{"client", ip}, {"reason", why}});
    };
    if (srv_.access) {
      hooks.stream_end = [srv = &srv_](const AccessRecord& r) {
        if (srv->live.access_log.load(std::memory_order_relaxed) && srv->access->sampled())
          srv->access->record(r);
      };
    }
    auto conn =
        H2Connection::create(settings, std::move(hooks), client_ip_, kTls ? "https" : "http");
    if (!conn.ok()) {
      TERN_LOG(kWarn, "http/2 session failed", {{"reason", conn.status().toString()}});
      return close();
    }
    conn_ = std::move(*conn);
    // A graceful stop sends GOAWAY; streams begun finish, then it closes.
    loop_.stop_hooks.add(this);
    if (srv_.stopping.load()) windDown();
    if (!received.empty()) onBytes(received);
    flush();
    read();
  }

 private:
  static constexpr bool kTls = !std::is_same_v<Stream, LoopStream>;
  static constexpr size_t kWriteBatchBytes = 64 * 1024;
  LoopStream& lowest() { return beast::get_lowest_layer(stream_); }

  // One deadline for the connection, on a timer of its own (a read is
  // always pending, so the stream's per-operation timers cannot be moved):
  // the timer wakes at the deadline it was set for, and sleeps again if the
  // deadline moved on meanwhile. The deadline follows what the connection
  // is doing: a write on the wire must finish within the body timeout (each
  // write is progress); a stream held back by the peer's flow-control
  // windows must move within the body timeout, counted from when it stopped
  // (frames that carry no data, such as PINGs, do not extend it); journeys
  // and their bodies are not timed here (the origin has its own timeouts);
  // otherwise the idle timeout (the header timeout before any request).
  void arm(bool progress = false) {
    enum Mode { kIdle, kBusy, kStalled, kWriting };
    Mode mode = kIdle;
    if (writing_) {
      mode = kWriting;
    } else if (conn_->stalledByPeer()) {
      mode = kStalled;
    } else if (conn_->awaitingAnswer() > 0 || conn_->sendingStreams() > 0) {
      mode = kBusy;
    }
    // Still stalled, or still on the same write: the deadline stays.
    const bool unchanged = mode == mode_ && (mode == kStalled || mode == kWriting) && !progress;
    mode_ = mode;
    if (unchanged) return;
    int64_t ms = 0;
    if (mode == kWriting || mode == kStalled) {
      ms = srv_.live.body_timeout_ms.load(std::memory_order_relaxed);
    } else if (mode == kIdle) {
      ms = conn_->seenRequest() ? srv_.live.idle_timeout_ms.load(std::memory_order_relaxed)
                                : srv_.live.header_timeout_ms.load(std::memory_order_relaxed);
    }
    if (ms <= 0) {
      deadline_ = Deadline::max();
      return;
    }
    deadline_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    if (!timer_waiting_) {
      waitDeadline();
    } else if (deadline_ < timer_.expiry()) {
      timer_.cancel();  // woken early; it sleeps again until the new deadline
    }
  }

  void waitDeadline() {
    timer_waiting_ = true;
    timer_.expires_at(deadline_);
    auto self = this->shared_from_this();
    timer_.async_wait([self](beast::error_code) {
      self->timer_waiting_ = false;
      if (self->closed_ || self->deadline_ == Deadline::max()) return;
      if (std::chrono::steady_clock::now() < self->deadline_) return self->waitDeadline();
      TERN_LOG(kDebug, "http/2 connection timed out", {{"client", self->client_ip_}});
      self->close();
    });
  }

  void onBytes(std::string_view bytes) {
    if (failed_) return;
    // On an error (reported through the hooks) GOAWAY, when nghttp2 queued
    // one, goes out; then the connection closes.
    if (!conn_->receive(bytes).isOk()) failed_ = true;
  }

  void read() {
    if (failed_ || !conn_->wantRead()) return;
    arm();
    auto self = this->shared_from_this();
    stream_.async_read_some(asio::buffer(rbuf_), [self](beast::error_code ec, size_t n) {
      if (ec) return self->close();
      self->onBytes(std::string_view(self->rbuf_.data(), n));
      self->flush();
      self->read();
    });
  }

  void flush() {
    if (writing_ || closed_) return;
    out_.clear();
    conn_->pendingOutput(out_, kWriteBatchBytes);
    if (out_.empty()) {
      if (failed_ || (!conn_->wantRead() && !conn_->wantWrite())) return close();
      return arm();
    }
    writing_ = true;
    arm(true);
    auto self = this->shared_from_this();
    asio::async_write(stream_, asio::buffer(out_), [self](beast::error_code ec, size_t) {
      self->writing_ = false;
      if (ec) return self->close();
      self->flush();
    });
  }

  void onStop() override { windDown(); }

  // Graceful stop: the GOAWAY that announces it, then 100 ms later (a round
  // trip and more on any network a cache serves) the one that names the
  // last stream taken; those streams finish, then the connection closes.
  void windDown() {
    conn_->shutdownNotice();
    flush();
    stop_timer_.expires_after(std::chrono::milliseconds(100));
    stop_timer_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
      if (ec || self->closed_) return;
      self->conn_->shutdown();
      self->flush();
    });
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    timer_.cancel();
    stop_timer_.cancel();
    beast::error_code ec;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
    lowest().close();
  }

  using Deadline = std::chrono::steady_clock::time_point;
  Stream stream_;
  Loop& loop_;
  EdgeServer::Impl& srv_;
  std::string client_ip_;
  asio::steady_timer timer_{loop_.ioc};
  Deadline deadline_ = Deadline::max();
  bool timer_waiting_ = false;
  int mode_ = 0;  // arm()'s last Mode
  asio::steady_timer stop_timer_{loop_.ioc};
  std::shared_ptr<H2Connection> conn_;
  std::array<char, 16384> rbuf_;
  std::string out_;
  bool writing_ = false;
  bool failed_ = false;
  bool closed_ = false;
};

template <class Stream>
void Session<Stream>::becomeH2(std::string received) {
  lowest().expires_never();
  std::make_shared<H2Session<Stream>>(std::move(stream_), loop_, srv_, client_ip_)
      ->start(std::move(received));
}

// ---- admin session ----

class AdminSession : public std::enable_shared_from_this<AdminSession> {
 public:
  AdminSession(tcp::socket socket, EdgeServer::Impl& srv) : stream_(std::move(socket)), srv_(srv) {}
  void start() {
    parser_.emplace();
    parser_->header_limit(16 * 1024);
    parser_->body_limit(1024);
    stream_.expires_after(std::chrono::seconds(10));
    auto self = shared_from_this();
    bhttp::async_read(stream_, buffer_, *parser_, [self](beast::error_code ec, size_t) {
      if (ec) return;
      auto& msg = self->parser_->get();
      auto r = admin::handleAdmin(self->srv_.admin, msg.method_string(), msg.target());
      auto res = std::make_shared<bhttp::response<bhttp::string_body>>(
          static_cast<bhttp::status>(r.status), 11);
      res->set(bhttp::field::content_type, r.content_type);
      res->set(bhttp::field::cache_control, "no-store");
      res->body() = msg.method() == bhttp::verb::head ? "" : r.body;
      res->keep_alive(msg.keep_alive());
      res->prepare_payload();
      bhttp::async_write(self->stream_, *res, [self, res](beast::error_code ec2, size_t) {
        if (!ec2 && res->keep_alive()) return self->start();
        beast::error_code ignored;
        self->stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
      });
    });
  }

 private:
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  EdgeServer::Impl& srv_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
};

void EdgeServer::Impl::accept(Loop& loop) {
  loop.acceptor.async_accept(loop.ioc, [this, &loop](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == asio::error::operation_aborted || stopping) return;
      TERN_LOG(kWarn, "accept failed", {{"reason", ec.message()}});
    } else if (connections.load() >= live.max_connections.load(std::memory_order_relaxed)) {
      rejected_connections->inc();
      beast::error_code ignored;
      socket.close(ignored);
    } else {
      std::make_shared<Session<LoopStream>>(std::move(socket), loop, *this)->start();
    }
    if (!stopping) accept(loop);
  });
}

void EdgeServer::Impl::acceptTls(Loop& loop) {
  loop.tls_acceptor.async_accept(loop.ioc, [this, &loop](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == asio::error::operation_aborted || stopping) return;
    } else if (connections.load() >= live.max_connections.load(std::memory_order_relaxed)) {
      rejected_connections->inc();
      beast::error_code ignored;
      socket.close(ignored);
    } else {
      std::make_shared<Session<TlsStream<LoopStream>>>(std::move(socket), loop, *this, *tls)
          ->start();
    }
    if (!stopping) acceptTls(loop);
  });
}

void EdgeServer::Impl::acceptAdmin() {
  admin_acceptor->async_accept(loops[0]->ioc, [this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) std::make_shared<AdminSession>(std::move(socket), *this)->start();
    acceptAdmin();
  });
}

EdgeServer::EdgeServer(ServerConfig config, origin::OriginConfig origins, cache::TieredStore* store,
                       cache::FlowConfig flow, metrics::Registry* registry, admin::AdminState admin,
                       AccessLog* access_log)
    : impl_(std::make_unique<Impl>()) {
  impl_->config = std::move(config);
  impl_->access = access_log;
  impl_->live.set(impl_->config);
  impl_->origins = std::move(origins);
  impl_->store = store;
  impl_->flow = std::move(flow);
  impl_->registry = registry;
  impl_->admin = std::move(admin);
  impl_->flow_metrics = std::make_unique<cache::FlowMetrics>(*registry);
  impl_->open_connections =
      &registry->gauge("tern_edge_open_connections", "Client connections open");
  impl_->rejected_connections = &registry->counter("tern_edge_rejected_connections_total",
                                                   "Connections refused over max_connections");
  impl_->bad_requests = &registry->counter("tern_edge_bad_requests_total",
                                           "Requests rejected as malformed or over limits");
  impl_->sendfile_bytes = &registry->counter("tern_edge_sendfile_bytes_total",
                                             "Body bytes sent with sendfile(2) from files (large "
                                             "memory-tier bodies, disk-tier body files)");
  impl_->connections_h1 =
      &registry->counter("tern_edge_connections_total",
                         "Client connections, by the protocol they speak", "protocol=\"h1\"");
  impl_->connections_h2 =
      &registry->counter("tern_edge_connections_total",
                         "Client connections, by the protocol they speak", "protocol=\"h2\"");
  impl_->h2_connection_errors =
      &registry->counter("tern_edge_h2_connection_errors_total",
                         "HTTP/2 connections closed for a protocol error or an abusive peer "
                         "(floods, rapid reset)");
}

EdgeServer::~EdgeServer() {
  if (!impl_->loops.empty() && !impl_->stopping) stop(0);
}

Status EdgeServer::start() {
  Impl& m = *impl_;
  int n = m.config.loops > 0 ? m.config.loops
                             : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  m.pool = std::make_unique<asio::thread_pool>(
      static_cast<size_t>(std::max(1, m.config.blocking_threads)));
  TERN_ASSIGN_OR_RETURN(auto ep, net::parseEndpoint(m.config.listen));
  std::optional<tcp::endpoint> tls_ep;
  if (!m.config.tls_listen.empty()) {
    TERN_ASSIGN_OR_RETURN(tls_ep, net::parseEndpoint(m.config.tls_listen));
    m.tls = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    m.tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                       asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
    beast::error_code ec;
    m.tls->use_certificate_chain_file(m.config.tls_cert, ec);
    if (ec) return Status::invalidArgument("tls.cert " + m.config.tls_cert + ": " + ec.message());
    m.tls->use_private_key_file(m.config.tls_key, asio::ssl::context::pem, ec);
    if (ec) return Status::invalidArgument("tls.key " + m.config.tls_key + ": " + ec.message());
    // ALPN (RFC 7301): h2 when offered and enabled, else HTTP/1.1.
    SSL_CTX_set_alpn_select_cb(
        m.tls->native_handle(),
        [](SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
           unsigned inlen, void* arg) -> int {
          static const unsigned char kBoth[] = "\x02h2\x08http/1.1";
          static const unsigned char kH1[] = "\x08http/1.1";
          const bool h2 = *static_cast<const bool*>(arg);
          const unsigned char* ours = h2 ? kBoth : kH1;
          const unsigned ours_len = h2 ? sizeof(kBoth) - 1 : sizeof(kH1) - 1;
          unsigned char* chosen = nullptr;
          if (SSL_select_next_proto(&chosen, outlen, ours, ours_len, in, inlen) !=
              OPENSSL_NPN_NEGOTIATED)
            return SSL_TLSEXT_ERR_NOACK;
          *out = chosen;
          return SSL_TLSEXT_ERR_OK;
        },
        &m.config.http2);
  }
  TERN_ASSIGN_OR_RETURN(auto admin_ep, net::parseEndpoint(m.config.admin_listen));
  for (int i = 0; i < n; ++i) {
    auto loop = std::make_unique<Loop>();
    // Port 0: the first loop picks a port, the others share it (SO_REUSEPORT).
    TERN_RETURN_IF_ERROR(net::openAcceptor(loop->acceptor, ep, true));
    if (i == 0) ep.port(loop->acceptor.local_endpoint().port());
    if (tls_ep) {
      TERN_RETURN_IF_ERROR(net::openAcceptor(loop->tls_acceptor, *tls_ep, true));
      if (i == 0) tls_ep->port(loop->tls_acceptor.local_endpoint().port());
    }
    loop->origin = std::make_unique<origin::BeastOriginClient>(loop->ioc, m.origins);
    auto* ioc = &loop->ioc;
    auto* pool = m.pool.get();
    loop->ctx = cache::FlowContext{m.store,
                                   &m.collapser,
                                   loop->origin.get(),
                                   [ioc](cache::Task t) { asio::post(*ioc, std::move(t)); },
                                   [pool](cache::Task t) { asio::post(*pool, std::move(t)); },
                                   m.flow,
                                   m.flow_metrics.get(),
                                   &m.background};
    m.loops.push_back(std::move(loop));
  }
  m.port = ep.port();
  m.tls_port = tls_ep ? tls_ep->port() : 0;
  m.admin_acceptor_owned = std::make_unique<tcp::acceptor>(m.loops[0]->ioc);
  m.admin_acceptor = m.admin_acceptor_owned.get();
  TERN_RETURN_IF_ERROR(net::openAcceptor(*m.admin_acceptor, admin_ep, false));
  m.admin_port = m.admin_acceptor->local_endpoint().port();
  for (auto& loop : m.loops) {
    m.accept(*loop);
    if (m.tls) m.acceptTls(*loop);
  }
  m.acceptAdmin();
  for (auto& loop : m.loops) {
    Loop* l = loop.get();
    l->thread = std::thread([l] {
      setThreadName("edge-loop");
      auto guard = asio::make_work_guard(l->ioc);
      l->ioc.run();
    });
  }
  TERN_LOG(kInfo, "edge listening",
           {{"http",
             m.config.listen.substr(0, m.config.listen.rfind(':')) + ":" + std::to_string(m.port)},
            {"admin", std::to_string(m.admin_port)},
            {"loops", std::to_string(n)}});
  return Status::ok();
}

void EdgeServer::stop(int64_t grace_ms) {
  Impl& m = *impl_;
  if (m.stopping.exchange(true)) return wait();
  for (auto& loop : m.loops) {
    asio::post(loop->ioc, [l = loop.get()] {
      beast::error_code ec;
      l->acceptor.close(ec);
      l->tls_acceptor.close(ec);
      // Idle keep-alive connections close now; those with a request in
      // flight finish it (and close after its response); HTTP/2 connections
      // get GOAWAY.
      l->stop_hooks.fire();
    });
  }
  asio::post(m.loops[0]->ioc, [&m] {
    beast::error_code ec;
    m.admin_acceptor->close(ec);
  });
  int64_t deadline = steadyNowUs() + grace_ms * 1000;
  while (m.connections.load() > 0 && steadyNowUs() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (auto& loop : m.loops) loop->ioc.stop();
  for (auto& loop : m.loops) {
    if (loop->thread.joinable()) loop->thread.join();
  }
  m.pool->join();
  {
    std::lock_guard lock(m.done_mu);
    m.done = true;
  }
  m.done_cv.notify_all();
}

void EdgeServer::wait() {
  std::unique_lock lock(impl_->done_mu);
  impl_->done_cv.wait(lock, [&] { return impl_->done; });
}

void EdgeServer::reload(const ServerConfig& settings, const origin::OriginConfig& origins) {
  impl_->live.set(settings);
  // Each loop's origin client belongs to its loop: the new upstreams are
  // handed over there, between two fetches.
  for (auto& loop : impl_->loops) {
    Loop* l = loop.get();
    asio::post(l->ioc, [l, origins] {
      if (l->origin) l->origin->reconfigure(origins);
    });
  }
}

int EdgeServer::port() const { return impl_->port; }
int EdgeServer::adminPort() const { return impl_->admin_port; }
int EdgeServer::tlsPort() const { return impl_->tls_port; }

}  // namespace tern::edge::server
