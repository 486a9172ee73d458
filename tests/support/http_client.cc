#include "tests/support/http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <functional>
#include <thread>

namespace tern::testing {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

HttpResponse convert(const bhttp::response<bhttp::string_body>& res) {
  HttpResponse out;
  out.status = static_cast<int>(res.result_int());
  for (const auto& f : res) {
    std::string n(f.name_string());
    for (auto& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto& slot = out.headers[n];
    slot = slot.empty() ? std::string(f.value()) : slot + ", " + std::string(f.value());
  }
  out.body = res.body();
  return out;
}

tcp::endpoint loopback(int port) {
  return {asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)};
}

}  // namespace

HttpResponse httpRequest(int port, const std::string& method, const std::string& target,
                         const HeaderList& headers, const std::string& body, int timeout_ms) {
  try {
    asio::io_context ioc;
    beast::tcp_stream stream(ioc);
    stream.expires_after(std::chrono::milliseconds(timeout_ms));
    stream.connect(loopback(port));
    bhttp::request<bhttp::string_body> req;
    req.version(11);
    req.method_string(method);
    req.target(target);
    bool has_host = false;
    for (const auto& [k, v] : headers) {
      req.insert(k, v);
      if (k == "Host" || k == "host") has_host = true;
    }
    if (!has_host) req.set(bhttp::field::host, "test.example");
    req.body() = body;
    if (!body.empty() || method == "POST" || method == "PUT") req.prepare_payload();
    bhttp::write(stream, req);
    beast::flat_buffer buf;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(boost::none);
    if (method == "HEAD") parser.skip(true);
    bhttp::read(stream, buf, parser);
    return convert(parser.get());
  } catch (const std::exception&) {
    return {};
  }
}

HttpResponse httpsGet(int port, const std::string& target, const HeaderList& headers) {
  try {
    asio::io_context ioc;
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    ctx.set_verify_mode(asio::ssl::verify_none);
    beast::ssl_stream<beast::tcp_stream> stream(ioc, ctx);
    beast::get_lowest_layer(stream).connect(loopback(port));
    stream.handshake(asio::ssl::stream_base::client);
    bhttp::request<bhttp::string_body> req(bhttp::verb::get, target, 11);
    req.set(bhttp::field::host, "test.example");
    for (const auto& [k, v] : headers) req.insert(k, v);
    bhttp::write(stream, req);
    beast::flat_buffer buf;
    bhttp::response<bhttp::string_body> res;
    bhttp::read(stream, buf, res);
    return convert(res);
  } catch (const std::exception&) {
    return {};
  }
}

std::string rawExchange(int port, const std::string& bytes, int timeout_ms) {
  asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  std::string out;
  try {
    stream.connect(loopback(port));
    asio::write(stream.socket(), asio::buffer(bytes));
    // Asynchronous reads: the stream's timeout applies only to them.
    char buf[4096];
    stream.expires_after(std::chrono::milliseconds(timeout_ms));
    std::function<void()> readMore = [&] {
      stream.async_read_some(asio::buffer(buf), [&](beast::error_code ec, size_t n) {
        out.append(buf, n);
        if (!ec) readMore();
      });
    };
    readMore();
    ioc.run();
  } catch (const std::exception&) {
  }
  return out;
}

std::string expectContinueExchange(int port, const std::string& head, const std::string& body,
                                   int timeout_ms) {
  asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  std::string out;
  try {
    stream.connect(loopback(port));
    asio::write(stream.socket(), asio::buffer(head));
    char buf[4096];
    bool sent_body = false;
    stream.expires_after(std::chrono::milliseconds(timeout_ms));
    std::function<void()> readMore = [&] {
      stream.async_read_some(asio::buffer(buf), [&](beast::error_code ec, size_t n) {
        out.append(buf, n);
        if (ec) return;
        if (!sent_body && out.find("100 Continue\r\n\r\n") != std::string::npos) {
          sent_body = true;
          asio::write(stream.socket(), asio::buffer(body));
        }
        readMore();
      });
    };
    readMore();
    ioc.run();
    if (!sent_body) return {};
  } catch (const std::exception&) {
  }
  return out;
}

std::vector<HttpResponse> concurrentGets(int port, const std::string& target, int n,
                                         const HeaderList& headers) {
  asio::io_context ioc;
  struct Conn {
    explicit Conn(asio::io_context& io) : stream(io) {}
    beast::tcp_stream stream;
    beast::flat_buffer buf;
    bhttp::request<bhttp::string_body> req;
    bhttp::response<bhttp::string_body> res;
  };
  std::vector<std::unique_ptr<Conn>> conns;
  std::vector<HttpResponse> out(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    auto c = std::make_unique<Conn>(ioc);
    c->req.version(11);
    c->req.method(bhttp::verb::get);
    c->req.target(target);
    c->req.set(bhttp::field::host, "test.example");
    for (const auto& [k, v] : headers) c->req.insert(k, v);
    Conn* raw = c.get();
    size_t idx = static_cast<size_t>(i);
    raw->stream.expires_after(std::chrono::seconds(30));
    raw->stream.async_connect(loopback(port), [raw, idx, &out](beast::error_code ec) {
      if (ec) return;
      bhttp::async_write(raw->stream, raw->req, [raw, idx, &out](beast::error_code ec2, size_t) {
        if (ec2) return;
        bhttp::async_read(raw->stream, raw->buf, raw->res,
                          [raw, idx, &out](beast::error_code ec3, size_t) {
                            if (!ec3) out[idx] = convert(raw->res);
                          });
      });
    });
    conns.push_back(std::move(c));
  }
  ioc.run();
  return out;
}

HttpResponse waitForHit(const std::function<HttpResponse()>& fetch) {
  HttpResponse r;
  for (int i = 0; i < 100; ++i) {
    r = fetch();
    if (r.header("cache-status").find("hit") != std::string::npos) return r;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return r;
}

}  // namespace tern::testing
