#pragma once
// CoordinatorProcess: a real tern-coordinator for tests, on loopback ports it
// picks itself (port 0), with its purge log in a folder of the test.

#include <memory>
#include <string>
#include <vector>

#include "tests/support/process.h"

namespace tern::testing {

class CoordinatorProcess {
 public:
  // Extra flags are appended (e.g. --lease 1s, --auth.token T).
  CoordinatorProcess(const std::string& data_dir, std::vector<std::string> extra_flags = {});
  ~CoordinatorProcess();
  bool ok() const { return http_port_ > 0 && grpc_port_ > 0; }
  int httpPort() const { return http_port_; }
  int grpcPort() const { return grpc_port_; }
  std::string grpcAddress() const { return "127.0.0.1:" + std::to_string(grpc_port_); }
  Process& process() { return *process_; }
  std::string log() const;
  // Stops (SIGKILL if `kill`, else SIGTERM) and starts again on the SAME
  // ports, so that edges find it where it was, after `down_ms`.
  void restart(bool kill = true, int down_ms = 0);

 private:
  void start();
  std::vector<std::string> args_;
  std::string log_path_;
  std::unique_ptr<Process> process_;
  int http_port_ = 0;
  int grpc_port_ = 0;
};

// Text of a file (empty when it cannot be read).
std::string readText(const std::string& path);

// Runs ternctl with `args` (output to `log`, replaced); its exit code, -1 if
// it did not exit within a minute.
int runCtl(const std::string& log, std::vector<std::string> args);

}  // namespace tern::testing
