#pragma once
// Names the calling thread, so that operators can tell a process's threads
// apart (top -H, perf, ps -L, /proc/<pid>/task/*/comm). Linux keeps at
// most 15 bytes of a name; longer ones are cut.
//
// Thread-safety: names only the calling thread.

#include <string_view>

namespace tern {

void setThreadName(std::string_view name);

}  // namespace tern
