#include "tests/support/test_origin.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <thread>

namespace tern::testing {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct TestOrigin::Impl {
  asio::io_context ioc;
  tcp::acceptor acceptor{ioc};
  std::thread thread;
  mutable std::mutex mu;
  std::map<std::string, OriginResponse> routes;
  std::map<std::string, int> counts;
  std::vector<RecordedRequest> log;

  void accept() {
    acceptor.async_accept([this](beast::error_code ec, tcp::socket s) {
      if (ec) return;
      serve(std::make_shared<beast::tcp_stream>(std::move(s)),
            std::make_shared<beast::flat_buffer>());
      accept();
    });
  }

  void serve(std::shared_ptr<beast::tcp_stream> stream, std::shared_ptr<beast::flat_buffer> buf) {
    auto req = std::make_shared<bhttp::request<bhttp::string_body>>();
    bhttp::async_read(*stream, *buf, *req, [this, stream, buf, req](beast::error_code ec, size_t) {
      if (ec) return;
      RecordedRequest rec;
      rec.method = std::string(req->method_string());
      rec.target = std::string(req->target());
      for (const auto& f : *req) {
        std::string n(f.name_string());
        for (auto& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        rec.headers[n] = std::string(f.value());
      }
      rec.body = req->body();
      OriginResponse r;
      bool found = false;
      {
        std::lock_guard lock(mu);
        counts[rec.target]++;
        log.push_back(rec);
        auto it = routes.find(rec.target);
        if (it != routes.end()) {
          r = it->second;
          found = true;
        }
      }
      if (!found) {
        r.status = 404;
        r.body = "no route\n";
      }
      auto res = std::make_shared<bhttp::response<bhttp::string_body>>(
          static_cast<bhttp::status>(r.status), 11);
      std::string etag, lm;
      for (const auto& [k, v] : r.headers) {
        res->insert(k, v);
        std::string n = k;
        for (auto& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (n == "etag") etag = v;
        if (n == "last-modified") lm = v;
      }
      bool not_modified = false;
      if (r.honor_conditionals) {
        auto inm = rec.headers.find("if-none-match");
        auto ims = rec.headers.find("if-modified-since");
        if (inm != rec.headers.end() && !etag.empty() &&
            inm->second.find(etag) != std::string::npos) {
          not_modified = true;
        } else if (inm == rec.headers.end() && ims != rec.headers.end() && !lm.empty() &&
                   ims->second == lm) {
          not_modified = true;
        }
      }
      if (not_modified) {
        res->result(bhttp::status::not_modified);
      } else if (rec.method != "HEAD") {
        res->body() = r.body;
      }
      res->keep_alive(req->keep_alive());
      if (!not_modified) res->prepare_payload();
      if (rec.method == "HEAD") res->content_length(r.body.size());
      auto hints = std::make_shared<std::string>();
      if (!r.early_hints.empty()) {
        hints->append("HTTP/1.1 103 Early Hints\r\n");
        for (const auto& [k, v] : r.early_hints) hints->append(k + ": " + v + "\r\n");
        hints->append("\r\n");
      }
      auto send = [stream, buf, res, hints, this] {
        if (!hints->empty()) asio::write(stream->socket(), asio::buffer(*hints));
        bhttp::async_write(*stream, *res, [this, stream, buf, res](beast::error_code ec2, size_t) {
          if (ec2 || !res->keep_alive()) {
            beast::error_code ignored;
            stream->socket().shutdown(tcp::socket::shutdown_both, ignored);
            return;
          }
          serve(stream, buf);
        });
      };
      if (r.delay_ms > 0) {
        auto timer =
            std::make_shared<asio::steady_timer>(ioc, std::chrono::milliseconds(r.delay_ms));
        timer->async_wait([timer, send](beast::error_code) { send(); });
      } else {
        send();
      }
    });
  }
};

TestOrigin::TestOrigin() : impl_(std::make_unique<Impl>()) {
  tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
  impl_->acceptor.open(ep.protocol());
  impl_->acceptor.set_option(asio::socket_base::reuse_address(true));
  impl_->acceptor.bind(ep);
  impl_->acceptor.listen();
  impl_->accept();
  impl_->thread = std::thread([this] { impl_->ioc.run(); });
}

TestOrigin::~TestOrigin() {
  impl_->ioc.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

int TestOrigin::port() const { return impl_->acceptor.local_endpoint().port(); }

void TestOrigin::set(const std::string& target, OriginResponse response) {
  std::lock_guard lock(impl_->mu);
  impl_->routes[target] = std::move(response);
}

int TestOrigin::count(const std::string& target) const {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->counts.find(target);
  return it == impl_->counts.end() ? 0 : it->second;
}

std::vector<RecordedRequest> TestOrigin::requests() const {
  std::lock_guard lock(impl_->mu);
  return impl_->log;
}

void TestOrigin::reset() {
  std::lock_guard lock(impl_->mu);
  impl_->counts.clear();
  impl_->log.clear();
}

}  // namespace tern::testing
