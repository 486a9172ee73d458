#include "tests/support/coordinator_process.h"

#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/support/edge_process.h"

namespace tern::testing {

std::string readText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

CoordinatorProcess::CoordinatorProcess(const std::string& data_dir,
                                       std::vector<std::string> extra_flags) {
  log_path_ = data_dir + ".log";
  args_ = {buildBinary("coordinator/tern-coordinator"),
           "--listen",
           "127.0.0.1:0",
           "--grpc_listen",
           "127.0.0.1:0",
           "--data_dir",
           data_dir};
  args_.insert(args_.end(), extra_flags.begin(), extra_flags.end());
  start();
}

CoordinatorProcess::~CoordinatorProcess() {
  if (process_ && process_->running()) {
    process_->signal(SIGTERM);
    if (process_->wait(5000) < 0) process_->kill();
  }
}

std::string CoordinatorProcess::log() const { return readText(log_path_); }

void CoordinatorProcess::start() {
  // Keep earlier output (restarts append to a numbered log).
  if (std::filesystem::exists(log_path_))
    std::filesystem::rename(log_path_,
                            log_path_ + "." + std::to_string(process_ ? process_->pid() : 0));
  process_ = std::make_unique<Process>(args_, log_path_);
  http_port_ = grpc_port_ = 0;
  for (int i = 0; i < 1000 && process_->running(); ++i) {
    std::string text = log();
    auto at = text.find("listening on port ");
    if (at != std::string::npos && text.find('\n', at) != std::string::npos) {
      int h = 0, g = 0;
      if (std::sscanf(text.c_str() + at, "listening on port %d (grpc %d)", &h, &g) == 2) {
        http_port_ = h;
        grpc_port_ = g;
        return;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void CoordinatorProcess::restart(bool kill, int down_ms) {
  if (kill) {
    process_->kill();
  } else {
    process_->signal(SIGTERM);
    process_->wait(10000);
  }
  if (down_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(down_ms));
  // Same ports: replace the port-0 listen flags by the ports it had. While
  // it was down, a connection of another test running in parallel may have
  // been given one of them as its local port: try again for a while (such
  // connections are short), then let the HTTP port be picked anew (edges
  // find a replica by its gRPC port, which must stay).
  const int http_port = http_port_, grpc_port = grpc_port_;
  for (int attempt = 0;; ++attempt) {
    const bool same_http = attempt < 30;
    for (size_t i = 0; i + 1 < args_.size(); ++i) {
      if (args_[i] == "--listen")
        args_[i + 1] = "127.0.0.1:" + std::to_string(same_http ? http_port : 0);
      if (args_[i] == "--grpc_listen") args_[i + 1] = "127.0.0.1:" + std::to_string(grpc_port);
    }
    start();
    if (ok() || attempt >= 60 || log().find("Address already in use") == std::string::npos) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

int runCtl(const std::string& log, std::vector<std::string> args) {
  args.insert(args.begin(), buildBinary("coordinator/ternctl"));
  std::filesystem::remove(log);
  Process p(args, log);
  int st = p.wait(60000);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

}  // namespace tern::testing
