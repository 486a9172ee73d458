#pragma once
// Time sources. Logic takes time as a parameter (milliseconds since the Unix
// epoch for wall time, a steady clock for durations) so that it is testable.

#include <chrono>
#include <cstdint>

namespace tern {

inline int64_t wallNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

inline int64_t steadyNowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace tern
