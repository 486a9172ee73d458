#include "tests/support/tcp_relay.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

namespace tern::testing {

TcpRelay::TcpRelay(const std::string& target) {
  const auto colon = target.rfind(':');
  host_ = target.substr(0, colon);
  target_port_ = std::stoi(target.substr(colon + 1));
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  ::listen(listen_fd_, 64);
  socklen_t len = sizeof(addr);
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { acceptLoop(); });
}

TcpRelay::~TcpRelay() {
  stopping_ = true;
  cut();
  if (acceptor_.joinable()) acceptor_.join();
  ::close(listen_fd_);
  std::vector<std::thread> pumps;
  {
    std::lock_guard lock(mu_);
    pumps.swap(pumps_);
  }
  for (auto& t : pumps) t.join();
  std::lock_guard lock(mu_);
  for (int fd : fds_) ::close(fd);
}

void TcpRelay::cut() {
  cut_ = true;
  std::lock_guard lock(mu_);
  for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
}

void TcpRelay::restore() { cut_ = false; }

void TcpRelay::acceptLoop() {
  while (!stopping_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    int in = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (in < 0) continue;
    if (cut_) {
      ::close(in);
      continue;
    }
    int out = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    ::inet_pton(AF_INET, host_.c_str(), &addr.sin_addr);
    addr.sin_port = htons(static_cast<uint16_t>(target_port_));
    if (::connect(out, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      ::close(in);
      ::close(out);
      continue;
    }
    const int one = 1;
    ::setsockopt(in, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    ::setsockopt(out, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    std::lock_guard lock(mu_);
    fds_.push_back(in);
    fds_.push_back(out);
    pumps_.emplace_back([this, in, out] { pump(in, out); });
    pumps_.emplace_back([this, in, out] { pump(out, in); });
  }
}

// Reads from `from` and forwards to `to`: a reader fills a delay line, a
// writer sends each chunk once it is due (at once without a delay).
void TcpRelay::pump(int from, int to) {
  struct Chunk {
    std::chrono::steady_clock::time_point due;
    std::string bytes;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Chunk> line;
  bool closed = false;
  std::thread writer([&] {
    std::unique_lock lock(mu);
    for (;;) {
      cv.wait(lock, [&] { return closed || !line.empty(); });
      if (line.empty()) return;  // closed and drained
      if (cv.wait_until(lock, line.front().due, [&] { return closed && cut_.load(); })) return;
      Chunk c = std::move(line.front());
      line.pop_front();
      lock.unlock();
      size_t done = 0;
      while (done < c.bytes.size()) {
        const ssize_t w = ::send(to, c.bytes.data() + done, c.bytes.size() - done, MSG_NOSIGNAL);
        if (w <= 0) break;
        done += static_cast<size_t>(w);
      }
      lock.lock();
      if (done < c.bytes.size()) {
        closed = true;
        line.clear();
        return;
      }
    }
  });
  char buf[16384];
  while (!stopping_) {
    pollfd p{from, POLLIN, 0};
    const int r = ::poll(&p, 1, 50);
    if (r == 0) continue;
    if (r < 0) break;
    const ssize_t n = ::read(from, buf, sizeof(buf));
    if (n <= 0 || cut_) break;
    std::lock_guard lock(mu);
    if (closed) break;
    line.push_back({std::chrono::steady_clock::now() + std::chrono::milliseconds(delay_ms_.load()),
                    std::string(buf, static_cast<size_t>(n))});
    cv.notify_all();
  }
  {
    std::lock_guard lock(mu);
    closed = true;
  }
  cv.notify_all();
  writer.join();
  ::shutdown(from, SHUT_RDWR);
  ::shutdown(to, SHUT_RDWR);
}

}  // namespace tern::testing
