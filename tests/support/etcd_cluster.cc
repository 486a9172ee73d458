#include "tests/support/etcd_cluster.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/support/http_client.h"

namespace tern::testing {

namespace {
constexpr const char* kEtcd = "/usr/bin/etcd";
}

bool etcdAvailable() { return std::filesystem::exists(kEtcd); }

std::vector<int> pickFreePorts(size_t n) {
  // All bound at once before any is released: the ports are distinct (one
  // at a time, the kernel may hand the same one out twice).
  std::vector<int> fds, ports;
  for (size_t i = 0; i < n; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    int port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      socklen_t len = sizeof addr;
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
      port = ntohs(addr.sin_port);
    }
    fds.push_back(fd);
    ports.push_back(port);
  }
  for (int fd : fds) ::close(fd);
  return ports;
}

int pickFreePort() { return pickFreePorts(1)[0]; }

EtcdCluster::EtcdCluster(const std::string& dir, int members) {
  const std::vector<int> ports = pickFreePorts(2 * static_cast<size_t>(members));
  for (int i = 0; i < members; ++i) {
    Member m;
    m.name = "m" + std::to_string(i);
    m.data_dir = dir + "/" + m.name;
    m.log_path = dir + "/" + m.name + ".log";
    m.client_port = ports[2 * static_cast<size_t>(i)];
    m.peer_port = ports[2 * static_cast<size_t>(i) + 1];
    std::filesystem::create_directories(dir);
    initial_cluster_ +=
        (i ? "," : "") + m.name + "=http://127.0.0.1:" + std::to_string(m.peer_port);
    members_.push_back(std::move(m));
  }
  for (int i = 0; i < members; ++i) start(i);
  ok_ = true;
  for (int i = 0; i < members; ++i) ok_ = waitHealthy(i, 20000) && ok_;
}

EtcdCluster::~EtcdCluster() = default;  // each Process kills and reaps its member

std::vector<std::string> EtcdCluster::endpoints() const {
  std::vector<std::string> out;
  for (const auto& m : members_) out.push_back("127.0.0.1:" + std::to_string(m.client_port));
  return out;
}

std::string EtcdCluster::endpointList() const {
  std::string out;
  for (const auto& e : endpoints()) out += (out.empty() ? "" : ",") + e;
  return out;
}

void EtcdCluster::start(int i) {
  Member& m = members_[static_cast<size_t>(i)];
  const std::string client = "http://127.0.0.1:" + std::to_string(m.client_port);
  const std::string peer = "http://127.0.0.1:" + std::to_string(m.peer_port);
  m.process.reset();
  m.process = std::make_unique<Process>(
      std::vector<std::string>{kEtcd, "--name", m.name, "--data-dir", m.data_dir,
                               "--listen-client-urls", client, "--advertise-client-urls", client,
                               "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                               "--initial-cluster", initial_cluster_, "--initial-cluster-state",
                               "new", "--initial-cluster-token", "tern-test",
                               // Quick elections on loopback.
                               "--heartbeat-interval", "50", "--election-timeout", "500",
                               "--logger", "zap", "--log-outputs", "stderr"},
      m.log_path);
}

void EtcdCluster::kill(int i) { members_[static_cast<size_t>(i)].process->kill(); }

bool EtcdCluster::waitHealthy(int i, int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = httpGet(members_[static_cast<size_t>(i)].client_port, "/health");
    if (r.status == 200 && r.body.find("true") != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

std::string EtcdCluster::log(int i) const {
  std::ifstream in(members_[static_cast<size_t>(i)].log_path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace tern::testing
