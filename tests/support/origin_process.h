#pragma once
// OriginProcess: tests/support/origin_server.py as a real process on
// loopback (its own port), for edge tests that need an origin outside the
// test process: large bodies, connections closed under the edge, counts of
// what really arrived.

#include <memory>
#include <string>

#include "tests/support/process.h"

namespace tern::testing {

class OriginProcess {
 public:
  explicit OriginProcess(const std::string& log_path);
  ~OriginProcess();
  bool ok() const { return port_ > 0; }
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // Requests "METHOD /path" that arrived (also those answered by a drop).
  long count(const std::string& method_and_path) const;
  long connections() const;
  long bodyBytesSent() const;  // of /big, written to sockets
  // From now on every request fails: "503" (or another status) or "reset"
  // (closed without a response); "off" ends it. False if not acknowledged.
  bool fail(const std::string& mode) const;
  Process& process() { return *process_; }

 private:
  long admin(const std::string& target) const;
  std::string log_path_;
  std::unique_ptr<Process> process_;
  int port_ = 0;
};

}  // namespace tern::testing
