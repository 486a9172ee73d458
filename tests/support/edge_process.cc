#include "tests/support/edge_process.h"

#include <signal.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace tern::testing {

std::string buildBinary(const std::string& relative) {
  // Tests live in <build>/tests/<kind>/; binaries in <build>/<relative>.
  std::filesystem::path dir = selfDir();
  for (int i = 0; i < 4; ++i) {
    if (std::filesystem::exists(dir / relative)) return (dir / relative).string();
    dir = dir.parent_path();
  }
  return relative;
}

EdgeProcess::EdgeProcess(const std::string& cache_dir, const std::string& origin_url,
                         std::vector<std::string> extra_flags) {
  log_path_ = cache_dir + ".log";
  args_ = {buildBinary("edge/tern-edge"),
           "--listen",
           "127.0.0.1:0",
           "--admin_listen",
           "127.0.0.1:0",
           "--cache.dir",
           cache_dir,
           "--server.loops",
           "2",
           "--cache.min_free_disk",
           "1MiB"};
  // (No origin here: the test gives it in a configuration file.)
  if (!origin_url.empty()) args_.insert(args_.end(), {"--origin", origin_url});
  args_.insert(args_.end(), extra_flags.begin(), extra_flags.end());
  start();
}

EdgeProcess::~EdgeProcess() {
  if (process_ && process_->running()) {
    process_->signal(SIGTERM);
    if (process_->wait(5000) < 0) process_->kill();
  }
}

std::string EdgeProcess::log() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void EdgeProcess::start() {
  std::filesystem::remove(log_path_);
  process_ = std::make_unique<Process>(args_, log_path_);
  port_ = admin_port_ = 0;
  // "tern-edge listening on port P (admin A) (tls T)"
  for (int i = 0; i < 1000 && process_->running(); ++i) {
    std::string text = log();
    auto at = text.find("listening on port ");
    if (at != std::string::npos && text.find('\n', at) != std::string::npos) {
      int p = 0, a = 0, t = 0;
      if (std::sscanf(text.c_str() + at, "listening on port %d (admin %d) (tls %d)", &p, &a, &t) ==
          3) {
        port_ = p;
        admin_port_ = a;
        tls_port_ = t;
        return;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void EdgeProcess::restart(bool kill) {
  if (kill) {
    process_->kill();
  } else {
    process_->signal(SIGTERM);
    process_->wait(10000);
  }
  start();
}

}  // namespace tern::testing
