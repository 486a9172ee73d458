#pragma once
// TcpRelay: a TCP forwarder on 127.0.0.1 between a process under test and a
// loopback target, that the test can cut (every connection reset, new ones
// closed at once) and restore. Used to cut one process off from a service
// (e.g. one coordinator replica from etcd) while the others keep it, or
// delay every byte both ways (a slow link to it).

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace tern::testing {

class TcpRelay {
 public:
  // Forwards 127.0.0.1:port() to `target` ("127.0.0.1:1234").
  explicit TcpRelay(const std::string& target);
  ~TcpRelay();
  TcpRelay(const TcpRelay&) = delete;
  TcpRelay& operator=(const TcpRelay&) = delete;

  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  void cut();
  void restore();
  // Every byte read from now on is forwarded `ms` later (each direction).
  void setDelay(int ms) { delay_ms_ = ms; }

 private:
  void acceptLoop();
  void pump(int from, int to);

  std::string host_;
  int target_port_ = 0;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> cut_{false};
  std::atomic<int> delay_ms_{0};
  std::mutex mu_;
  std::vector<int> fds_;            // GUARDED_BY(mu_): open connection ends
  std::vector<std::thread> pumps_;  // GUARDED_BY(mu_)
  std::thread acceptor_;
};

}  // namespace tern::testing
