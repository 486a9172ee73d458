#pragma once
// TlsStream: server-side TLS over a Beast basic_stream, with OpenSSL driven
// directly instead of through Asio's ssl::stream.
//
// Asio's stream encrypts into a BIO pair of 17 KiB, copies each record out
// into a buffer of its own and writes that, one record per asynchronous
// step. Here SSL_write encrypts through a BIO whose write appends to one
// output buffer, and everything written in one call (up to 64 KiB of
// records) goes to the socket in one write: one copy fewer and one system
// call per batch instead of per record. Ciphertext read from the socket is
// handed to OpenSSL through a memory BIO. Every socket operation goes
// through the basic_stream, so its timeouts apply as they do to plain
// connections.
//
// Like the streams it stands in for: at most one read and one write in
// flight at a time (the sessions guarantee it), completions never run
// inside the call that starts the operation, and the object may be moved
// while no operation is in flight (the state OpenSSL's BIOs point to lives
// on the heap).
//
// Thread-safety: one event loop.

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <array>
#include <boost/asio/compose.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream_base.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/buffers_range.hpp>
#include <memory>
#include <new>
#include <string>

namespace tern::edge::server {

template <class NextLayer>
class TlsStream {
 public:
  using executor_type = typename NextLayer::executor_type;
  using next_layer_type = NextLayer;

  // `next` is what NextLayer is built from (a connected socket).
  template <class Next>
  TlsStream(Next&& next, boost::asio::ssl::context& ctx)
      : next_(std::forward<Next>(next)), state_(std::make_unique<State>()) {
    state_->ssl = SSL_new(ctx.native_handle());
    BIO* rbio = state_->ssl ? BIO_new(BIO_s_mem()) : nullptr;
    BIO* wbio = rbio ? BIO_new(sinkMethod()) : nullptr;
    if (!wbio) {
      BIO_free(rbio);
      throw std::bad_alloc();
    }
    BIO_set_mem_eof_return(rbio, -1);  // empty: "retry", not end of stream
    BIO_set_data(wbio, state_.get());
    BIO_set_init(wbio, 1);
    SSL_set_bio(state_->ssl, rbio, wbio);
    SSL_set_accept_state(state_->ssl);
    // As nginx: an idle connection does not keep OpenSSL's record buffers.
    // AUTO_RETRY (OpenSSL 3's default, made explicit): SSL_read asks for
    // more only when what the read BIO holds is used up.
    SSL_set_mode(state_->ssl, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_AUTO_RETRY);
  }
  TlsStream(TlsStream&&) = default;
  ~TlsStream() = default;

  executor_type get_executor() { return next_.get_executor(); }
  NextLayer& next_layer() { return next_; }
  SSL* native_handle() { return state_->ssl; }
  // Gives back the output buffer's memory (a keep-alive connection waiting
  // for its next request). Not while a write is in flight.
  void releaseBuffers() {
    if (!state_->writing && state_->out.empty()) std::string().swap(state_->out);
  }

  template <class Handler>
  auto async_handshake(boost::asio::ssl::stream_base::handshake_type, Handler&& handler) {
    return boost::asio::async_compose<Handler, void(boost::system::error_code)>(HandshakeOp{*this},
                                                                                handler, next_);
  }

  template <class Buffers, class Handler>
  auto async_read_some(const Buffers& buffers, Handler&& handler) {
    return boost::asio::async_compose<Handler, void(boost::system::error_code, std::size_t)>(
        ReadOp<Buffers>{*this, buffers}, handler, next_);
  }

  template <class Buffers, class Handler>
  auto async_write_some(const Buffers& buffers, Handler&& handler) {
    return boost::asio::async_compose<Handler, void(boost::system::error_code, std::size_t)>(
        WriteOp<Buffers>{*this, buffers}, handler, next_);
  }

 private:
  // Plaintext per write: above any one batch a session hands over (HTTP/2:
  // 64 KiB and a frame), so that a batch is never split into two writes.
  static constexpr size_t kMaxBatch = 128 * 1024;
  static constexpr size_t kCoalesce = 16 * 1024;  // small buffers joined into one record

  struct State {
    SSL* ssl = nullptr;
    std::string out;       // ciphertext to write
    std::string out_next;  // what OpenSSL writes while `out` is on the wire
    bool writing = false;
    std::array<char, 17 * 1024> in;
    std::string plain;  // small buffers coalesced before SSL_write
    ~State() {
      if (ssl) SSL_free(ssl);  // frees both BIOs
    }
  };

  // A BIO whose writes append to State::out (or out_next while `out` is
  // being written to the socket).
  static BIO_METHOD* sinkMethod() {
    static BIO_METHOD* method = [] {
      BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "tern-sink");
      BIO_meth_set_write(m, [](BIO* b, const char* data, int len) -> int {
        auto* st = static_cast<State*>(BIO_get_data(b));
        try {  // (no exception through OpenSSL's C frames)
          (st->writing ? st->out_next : st->out).append(data, static_cast<size_t>(len));
        } catch (...) {
          return -1;
        }
        return len;
      });
      BIO_meth_set_ctrl(
          m, [](BIO*, int cmd, long, void*) -> long { return cmd == BIO_CTRL_FLUSH ? 1 : 0; });
      return m;
    }();
    return method;
  }

  static boost::system::error_code sslError(SSL* ssl, int rv) {
    const int err = SSL_get_error(ssl, rv);
    if (err == SSL_ERROR_ZERO_RETURN) return boost::asio::error::eof;
    const unsigned long code = ERR_get_error();
    ERR_clear_error();
    if (code == 0) return boost::asio::ssl::error::stream_truncated;
    return {static_cast<int>(code), boost::asio::error::get_ssl_category()};
  }

  // While `out` is on the wire, what OpenSSL writes (an alert, a key update
  // answering the client's) waits in out_next and goes out next.
  void beginWrite() { state_->writing = true; }
  void endWrite() {
    state_->writing = false;
    state_->out.clear();  // (keeps its capacity for the next batch)
    if (!state_->out_next.empty()) {
      state_->out += state_->out_next;
      state_->out_next.clear();
    }
  }
  static bool feed(State& st, std::size_t n) {
    return BIO_write(SSL_get_rbio(st.ssl), st.in.data(), static_cast<int>(n)) ==
           static_cast<int>(n);
  }

  struct HandshakeOp {
    TlsStream& s;
    int step = 0;
    boost::system::error_code error;
    template <class Self>
    void operator()(Self& self, boost::system::error_code ec = {}, std::size_t n = 0) {
      State& st = *s.state_;
      if (step == 3) return self.complete(error);  // posted completion
      if (step == 1) {
        // A flight of ours is out; after a failure, it was the alert saying why.
        s.endWrite();
        if (ec) return self.complete(ec);
        if (error) return self.complete(error);
      } else if (step == 2) {  // ciphertext arrived
        if (ec) return self.complete(ec);
        if (!feed(st, n)) return self.complete(boost::asio::error::no_memory);
      }
      ERR_clear_error();
      const int rv = SSL_do_handshake(st.ssl);
      const bool want_read = rv != 1 && SSL_get_error(st.ssl, rv) == SSL_ERROR_WANT_READ;
      if (rv != 1 && !want_read) error = sslError(st.ssl, rv);
      if (!st.out.empty()) {  // our flight goes out first (after the last step too)
        step = 1;
        s.beginWrite();
        return boost::asio::async_write(s.next_, boost::asio::buffer(st.out), std::move(self));
      }
      if (want_read) {
        step = 2;
        return s.next_.async_read_some(boost::asio::buffer(st.in), std::move(self));
      }
      if (step != 0) return self.complete(error);
      step = 3;
      boost::asio::post(s.next_.get_executor(), std::move(self));
    }
  };

  template <class Buffers>
  struct ReadOp {
    TlsStream& s;
    Buffers buffers;
    int step = 0;
    std::size_t result = 0;
    boost::system::error_code error;
    template <class Self>
    void operator()(Self& self, boost::system::error_code ec = {}, std::size_t n = 0) {
      State& st = *s.state_;
      if (step == 3) return self.complete(error, result);  // posted completion
      if (step == 2) {
        if (ec) return self.complete(ec, 0);
        if (!feed(st, n)) return self.complete(boost::asio::error::no_memory, 0);
      }
      boost::asio::mutable_buffer first;
      for (auto b : boost::beast::buffers_range_ref(buffers)) {
        if (b.size() > 0) {
          first = b;
          break;
        }
      }
      if (first.size() == 0) return finish(self, {}, 0);
      ERR_clear_error();
      const int rv = SSL_read(st.ssl, first.data(),
                              static_cast<int>(std::min<std::size_t>(first.size(), 1 << 30)));
      if (rv > 0) return finish(self, {}, static_cast<std::size_t>(rv));
      if (SSL_get_error(st.ssl, rv) == SSL_ERROR_WANT_READ) {
        step = 2;
        return s.next_.async_read_some(boost::asio::buffer(st.in), std::move(self));
      }
      finish(self, sslError(st.ssl, rv), 0);
    }
    // Never completes inside async_read_some itself.
    template <class Self>
    void finish(Self& self, boost::system::error_code ec, std::size_t n) {
      if (step != 0) return self.complete(ec, n);
      step = 3;
      error = ec;
      result = n;
      boost::asio::post(s.next_.get_executor(), std::move(self));
    }
  };

  template <class Buffers>
  struct WriteOp {
    TlsStream& s;
    Buffers buffers;
    int step = 0;
    std::size_t taken = 0;  // plaintext bytes encrypted
    template <class Self>
    void operator()(Self& self, boost::system::error_code ec = {}, std::size_t = 0) {
      State& st = *s.state_;
      if (step == 1) {
        s.endWrite();
        return self.complete(ec, ec ? 0 : taken);
      }
      // Encrypt up to kMaxBatch bytes: small buffers are joined so that a
      // response head and a small body travel in one record.
      ERR_clear_error();
      for (auto b : boost::beast::buffers_range_ref(buffers)) {
        if (taken >= kMaxBatch) break;
        const char* p = static_cast<const char*>(b.data());
        std::size_t len = std::min(b.size(), kMaxBatch - taken);
        if (len == 0) continue;
        if (st.plain.size() + len <= kCoalesce) {
          st.plain.append(p, len);
          taken += len;
          continue;
        }
        if (!flushPlain(st)) return fail(self, st);
        if (len < kCoalesce) {
          st.plain.append(p, len);
        } else if (SSL_write(st.ssl, p, static_cast<int>(len)) <= 0) {
          return fail(self, st);
        }
        taken += len;
      }
      if (!flushPlain(st)) return fail(self, st);
      step = 1;
      s.beginWrite();
      if (st.out.empty()) {  // nothing to send (an empty buffer sequence)
        return boost::asio::post(s.next_.get_executor(), [self = std::move(self)]() mutable {
          self(boost::system::error_code(), std::size_t{0});
        });
      }
      boost::asio::async_write(s.next_, boost::asio::buffer(st.out), std::move(self));
    }
    static bool flushPlain(State& st) {
      if (st.plain.empty()) return true;
      const int rv = SSL_write(st.ssl, st.plain.data(), static_cast<int>(st.plain.size()));
      st.plain.clear();
      return rv > 0;
    }
    template <class Self>
    void fail(Self& self, State& st) {
      st.plain.clear();
      auto ec = sslError(st.ssl, -1);
      step = 1;
      s.beginWrite();
      boost::asio::post(s.next_.get_executor(),
                        [self = std::move(self), ec]() mutable { self(ec, std::size_t{0}); });
    }
  };

  NextLayer next_;
  std::unique_ptr<State> state_;
};

}  // namespace tern::edge::server
