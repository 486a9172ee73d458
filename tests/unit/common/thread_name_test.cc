#include "common/thread_name.h"

#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <thread>

namespace tern {
namespace {

// The name the kernel shows for the calling thread.
std::string kernelName() {
  std::ifstream in("/proc/self/task/" + std::to_string(::syscall(SYS_gettid)) + "/comm");
  std::string name;
  std::getline(in, name);
  return name;
}

TEST(ThreadName, TheKernelShowsItAndALongOneIsCut) {
  std::string shown, cut;
  std::thread([&] {
    setThreadName("fanout-waker");
    shown = kernelName();
    setThreadName("a-name-longer-than-fifteen-bytes");
    cut = kernelName();
  }).join();
  EXPECT_EQ(shown, "fanout-waker");
  EXPECT_EQ(cut, "a-name-longer-t");
}

}  // namespace
}  // namespace tern
