#pragma once
// EtcdCluster: real etcd members (Debian's etcd-server) on loopback for
// tests: each with its own data folder and free client and peer ports,
// tracked by PID and stopped when the object goes away. Members can be
// killed and started again to test failover and the loss of quorum.

#include <memory>
#include <string>
#include <vector>

#include "tests/support/process.h"

namespace tern::testing {

// True when an etcd binary is installed (tests skip without one).
bool etcdAvailable();

class EtcdCluster {
 public:
  EtcdCluster(const std::string& dir, int members);
  ~EtcdCluster();
  // Every member answers (within ~20 s of starting).
  bool ok() const { return ok_; }
  // host:port of each member's client listener.
  std::vector<std::string> endpoints() const;
  std::string endpointList() const;  // comma-separated
  // SIGKILL (the member keeps its data) / start again with the same data.
  void kill(int member);
  void start(int member);
  std::string log(int member) const;

 private:
  bool waitHealthy(int member, int timeout_ms);
  struct Member {
    std::string name, data_dir, log_path;
    int client_port = 0, peer_port = 0;
    std::unique_ptr<Process> process;
  };
  std::vector<Member> members_;
  std::string initial_cluster_;
  bool ok_ = false;
};

// A TCP port on 127.0.0.1 that was free a moment ago.
int pickFreePort();
// `n` distinct free ports (all bound at once, then released).
std::vector<int> pickFreePorts(size_t n);

}  // namespace tern::testing
