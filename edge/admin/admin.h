#pragma once
// The admin endpoints of an edge: /metrics (Prometheus text format),
// /healthz (the process is up) and /readyz (the cache is open and, when a
// coordinator is configured, caught up). Plain functions of the state they
// report; the server serves them on the admin listener.

#include <atomic>
#include <functional>
#include <string>

#include "common/metrics.h"

namespace tern::edge::admin {

struct AdminResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

struct AdminState {
  metrics::Registry* registry = nullptr;
  std::function<bool(std::string*)> ready;  // fills the reason when not ready
};

AdminResponse handleAdmin(const AdminState& state, std::string_view method, std::string_view path);

}  // namespace tern::edge::admin
