#pragma once
// EdgeProcess: a real tern-edge process for tests, on loopback ports chosen
// by the process itself (port 0), with its cache in a folder of the test.

#include <memory>
#include <string>
#include <vector>

#include "tests/support/process.h"

namespace tern::testing {

class EdgeProcess {
 public:
  // Starts tern-edge (built next to the test binary's tree) and waits until
  // it prints its ports. Extra flags are appended. An empty origin_url gives
  // no --origin flag (a --config file names the origins).
  EdgeProcess(const std::string& cache_dir, const std::string& origin_url,
              std::vector<std::string> extra_flags = {});
  ~EdgeProcess();
  int port() const { return port_; }
  int adminPort() const { return admin_port_; }
  int tlsPort() const { return tls_port_; }
  bool ok() const { return port_ > 0; }
  Process& process() { return *process_; }
  std::string log() const;
  // SIGKILL, then start again with the same arguments.
  void restart(bool kill = true);

 private:
  void start();
  std::vector<std::string> args_;
  std::string log_path_;
  std::unique_ptr<Process> process_;
  int port_ = 0;
  int admin_port_ = 0;
  int tls_port_ = 0;
};

// Path of a binary of the build tree, found from the test binary's folder.
std::string buildBinary(const std::string& relative);

}  // namespace tern::testing
