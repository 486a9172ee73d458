#include "tests/support/tcp_relay.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

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

void TcpRelay::pump(int from, int to) {
  char buf[16384];
  while (!stopping_) {
    pollfd p{from, POLLIN, 0};
    const int r = ::poll(&p, 1, 50);
    if (r == 0) continue;
    if (r < 0) break;
    const ssize_t n = ::read(from, buf, sizeof(buf));
    if (n <= 0 || cut_) break;
    ssize_t done = 0;
    while (done < n) {
      const ssize_t w = ::send(to, buf + done, static_cast<size_t>(n - done), MSG_NOSIGNAL);
      if (w <= 0) break;
      done += w;
    }
    if (done < n) break;
  }
  ::shutdown(from, SHUT_RDWR);
  ::shutdown(to, SHUT_RDWR);
}

}  // namespace tern::testing
