// The transport floor of a purge's fan-out on this machine: what the kernel
// alone charges for one small message to each of N loopback TCP connections
// and one acknowledgement back, with no gRPC, no HTTP/2 and no coordinator.
//
//   fanout_floor [--connections N] [--rounds R] [--bytes B] [--no-pin]
//
// One thread plays the coordinator (pinned to CPU 0): per round it writes B
// bytes to every connection, then waits (epoll) until every one has sent its
// 8-byte acknowledgement. Another thread plays the edges (pinned to CPU 1):
// each readable connection is read and acknowledged at once. This is the
// fewest system calls a fan-out over N connections can make (one send and
// one receive per connection on each side, plus epoll), so no coordinator on
// this machine delivers a purge to N streams faster than a round here; the
// pinning is purge_bench's. Reports the round time's median and P99.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const char* what) {
  std::perror(what);
  std::exit(1);
}

void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof(set), &set) != 0) die("sched_setaffinity");
}

void tune(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

// Reads exactly n bytes from a blocking-enough socket (small messages on
// loopback arrive whole; a short read is finished by polling).
void readAll(int fd, char* buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::read(fd, buf + got, n - got);
    if (r > 0) {
      got += static_cast<size_t>(r);
    } else if (r < 0 && errno == EAGAIN) {
      std::this_thread::yield();
    } else {
      die("read");
    }
  }
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[i];
}

}  // namespace

int main(int argc, char** argv) {
  int connections = 1000;
  int rounds = 300;
  size_t bytes = 64;
  bool pinned = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--connections") {
      connections = std::atoi(next());
    } else if (a == "--rounds") {
      rounds = std::atoi(next());
    } else if (a == "--bytes") {
      bytes = static_cast<size_t>(std::atoll(next()));
    } else if (a == "--no-pin") {
      pinned = false;
    } else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if (connections < 1 || rounds < 1 || bytes < 1) {
    std::fprintf(stderr, "--connections, --rounds and --bytes must be positive\n");
    return 2;
  }
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  if (lim.rlim_cur < static_cast<rlim_t>(2 * connections + 64)) {
    lim.rlim_cur = std::min<rlim_t>(lim.rlim_max, 2 * connections + 64);
    setrlimit(RLIMIT_NOFILE, &lim);
  }

  int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  if (listener < 0) die("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) die("bind");
  if (::listen(listener, 4096) != 0) die("listen");
  socklen_t len = sizeof(addr);
  getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);

  std::vector<int> server_fds, client_fds;
  for (int i = 0; i < connections; ++i) {
    int c = ::socket(AF_INET, SOCK_STREAM, 0);
    if (c < 0) die("socket");
    if (::connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) die("connect");
    int s = ::accept(listener, nullptr, nullptr);
    if (s < 0) die("accept");
    tune(c);
    tune(s);
    fcntl(c, F_SETFL, O_NONBLOCK);
    fcntl(s, F_SETFL, O_NONBLOCK);
    client_fds.push_back(c);
    server_fds.push_back(s);
  }
  ::close(listener);

  std::atomic<bool> done{false};
  std::thread edges([&] {
    if (pinned) pin(1);
    int ep = epoll_create1(0);
    for (int i = 0; i < connections; ++i) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u32 = static_cast<uint32_t>(i);
      epoll_ctl(ep, EPOLL_CTL_ADD, client_fds[i], &ev);
    }
    std::vector<char> buf(bytes);
    std::vector<epoll_event> events(256);
    const char ack[8] = {};
    while (!done.load(std::memory_order_relaxed)) {
      int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), 100);
      for (int k = 0; k < n; ++k) {
        int fd = client_fds[events[k].data.u32];
        readAll(fd, buf.data(), bytes);
        if (::write(fd, ack, sizeof(ack)) != static_cast<ssize_t>(sizeof(ack))) die("write ack");
      }
    }
    ::close(ep);
  });

  if (pinned) pin(0);
  int ep = epoll_create1(0);
  for (int i = 0; i < connections; ++i) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = static_cast<uint32_t>(i);
    epoll_ctl(ep, EPOLL_CTL_ADD, server_fds[i], &ev);
  }
  std::vector<char> message(bytes, 'p');
  std::vector<epoll_event> events(256);
  std::vector<double> round_ms;
  char ack[8];
  for (int r = 0; r < rounds; ++r) {
    auto start = Clock::now();
    for (int fd : server_fds)
      if (::write(fd, message.data(), bytes) != static_cast<ssize_t>(bytes)) die("write");
    int acked = 0;
    while (acked < connections) {
      int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), 1000);
      if (n < 0) die("epoll_wait");
      for (int k = 0; k < n; ++k) {
        readAll(server_fds[events[k].data.u32], ack, sizeof(ack));
        ++acked;
      }
    }
    round_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  }
  done = true;
  edges.join();
  std::printf(
      "fanout_floor: %d loopback TCP connections, %zu-byte message + 8-byte ack each, %d rounds, "
      "%s\n",
      connections, bytes, rounds,
      pinned ? "sender pinned to CPU 0, receivers to CPU 1" : "not pinned");
  std::printf("round (ms)  p50 %.2f  p99 %.2f  max %.2f  per connection p50 %.1f us\n",
              percentile(round_ms, 0.5), percentile(round_ms, 0.99), percentile(round_ms, 1.0),
              percentile(round_ms, 0.5) * 1000.0 / connections);
  for (int fd : server_fds) ::close(fd);
  for (int fd : client_fds) ::close(fd);
  return 0;
}
