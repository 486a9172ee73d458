#pragma once
// The coordinator's HTTP/JSON API, status page and admin endpoints, as plain
// functions of a request (no sockets: coordinator/server/http_server serves
// them).
//
//   POST /v1/purge          purge; JSON in, JSON out (mirrors tern.v1.PurgeRequest)
//   GET  /v1/purges/{seq}   one purge's status
//   GET  /v1/purges         recent purges (?limit=N, at most 1000)
//   GET  /v1/edges          edges, their state and lag
//   GET  /                  status page (HTML)
//   GET  /metrics           Prometheus text format
//   GET  /healthz, /readyz
//
// /v1/* need "Authorization: Bearer <token>" when credentials are configured
// (coordinator/api/access.h): POST /v1/purge a credential allowed to purge
// what it names (403 otherwise), the reads one with the read scope; the
// status page and /metrics too when `protect_status`.
// Errors are JSON: {"error": {"code": "invalid_argument", "message": "..."}}.
// The JSON shapes are in coordinator/api/json.h.

#include <functional>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "common/result.h"
#include "coordinator/api/access.h"
#include "coordinator/api/json.h"
#include "coordinator/core/coordinator.h"

namespace tern::coordinator {

struct ApiRequest {
  std::string method;
  std::string target;  // path and query
  std::string authorization;
  std::string peer;             // the caller's address, for the audit trail
  std::string idempotency_key;  // Idempotency-Key header
  std::string body;
};

struct ApiResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

class HttpApi {
 public:
  HttpApi(Coordinator* coordinator, const Access* access, metrics::Registry* registry,
          bool protect_status = false)
      : coordinator_(coordinator),
        access_(access),
        registry_(registry),
        protect_status_(protect_status) {}

  // Answers through `respond`, at once or (purge with wait=all) later, from
  // another thread.
  void handle(const ApiRequest& request, std::function<void(ApiResponse)> respond);

  std::string statusPage();

 private:
  Coordinator* coordinator_;
  const Access* access_;
  metrics::Registry* registry_;
  bool protect_status_;
};

}  // namespace tern::coordinator
