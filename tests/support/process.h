#pragma once
// Process: a child process started by tests, tracked by PID and killed (and
// reaped) when the object is destroyed.

#include <sys/types.h>

#include <string>
#include <vector>

namespace tern::testing {

class Process {
 public:
  // Starts `argv[0]` with the arguments; stdout/stderr go to `log_path` if
  // given, else are inherited.
  Process(std::vector<std::string> argv, const std::string& log_path = {});
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  // Sends a signal.
  void signal(int sig);
  // Waits for exit; returns the wait status, or -1 after `timeout_ms`.
  int wait(int timeout_ms);
  // SIGKILL and reap.
  void kill();

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
};

// Directory of the running test binary (helpers are built next to it).
std::string selfDir();

}  // namespace tern::testing
