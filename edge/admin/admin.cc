#include "edge/admin/admin.h"

namespace tern::edge::admin {

AdminResponse handleAdmin(const AdminState& state, std::string_view method, std::string_view path) {
  if (method != "GET" && method != "HEAD") return {405, "text/plain", "method not allowed\n"};
  auto q = path.find('?');
  if (q != std::string_view::npos) path = path.substr(0, q);
  if (path == "/metrics") {
    return {200, "text/plain; version=0.0.4; charset=utf-8",
            state.registry ? state.registry->render() : ""};
  }
  if (path == "/healthz") return {200, "text/plain", "ok\n"};
  if (path == "/readyz") {
    std::string why;
    if (state.ready && !state.ready(&why)) return {503, "text/plain", "not ready: " + why + "\n"};
    return {200, "text/plain", "ready\n"};
  }
  return {404, "text/plain", "not found\n"};
}

}  // namespace tern::edge::admin
