#include "tests/support/origin_process.h"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/support/http_client.h"

namespace tern::testing {

OriginProcess::OriginProcess(const std::string& log_path) : log_path_(log_path) {
  process_ = std::make_unique<Process>(
      std::vector<std::string>{"/usr/bin/python3", TERN_TEST_SUPPORT_DIR "/origin_server.py"},
      log_path_);
  for (int i = 0; i < 1000 && process_->running() && port_ == 0; ++i) {
    std::ifstream in(log_path_);
    std::string word;
    int p = 0;
    if (in >> word >> p && word == "port") port_ = p;
    if (port_ == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

OriginProcess::~OriginProcess() = default;  // Process kills and reaps by PID

long OriginProcess::admin(const std::string& target) const {
  auto r = httpGet(port_, target);
  if (r.status != 200) return -1;
  return std::stol(r.body);
}

long OriginProcess::count(const std::string& method_and_path) const {
  std::string key;
  for (char c : method_and_path) key += c == ' ' ? std::string("%20") : std::string(1, c);
  return admin("/admin/count?key=" + key);
}

long OriginProcess::connections() const { return admin("/admin/connections"); }
long OriginProcess::bodyBytesSent() const { return admin("/admin/sent"); }

bool OriginProcess::fail(const std::string& mode) const {
  auto r = httpGet(port_, "/admin/fail?mode=" + mode);
  return r.status == 200 && r.body == mode;
}

}  // namespace tern::testing
