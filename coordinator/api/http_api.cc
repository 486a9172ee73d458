#include "coordinator/api/http_api.h"

#include <charconv>
#include <cmath>
#include <ctime>

#include "common/log.h"
#include "coordinator/api/proto_views.h"
#include "proto/purge_convert.h"

namespace tern::coordinator {

namespace v1 = tern::v1;

namespace {

ApiResponse error(int status, std::string_view code, std::string_view message) {
  return {status, "application/json", errorJson(code, message), {}};
}

ApiResponse fromStatus(const Status& s) {
  switch (s.code()) {
    case StatusCode::kInvalidArgument:
      return error(400, "invalid_argument", s.message());
    case StatusCode::kNotFound:
      return error(404, "not_found", s.message());
    case StatusCode::kResourceExhausted:
      return error(429, "rate_limited", s.message());
    case StatusCode::kUnauthenticated: {
      ApiResponse r = error(401, "unauthenticated", s.message());
      r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"tern\"");
      return r;
    }
    case StatusCode::kPermissionDenied:
      return error(403, "permission_denied", s.message());
    case StatusCode::kUnavailable:
      return error(503, "unavailable", s.message());
    default:
      return error(500, "internal", s.message());
  }
}

std::string_view queryParam(std::string_view target, std::string_view name) {
  auto q = target.find('?');
  if (q == std::string_view::npos) return {};
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    auto amp = rest.find('&');
    std::string_view kv = rest.substr(0, amp);
    if (kv.starts_with(name) && kv.size() > name.size() && kv[name.size()] == '=')
      return kv.substr(name.size() + 1);
    if (amp == std::string_view::npos) break;
    rest.remove_prefix(amp + 1);
  }
  return {};
}

bool parseU64(std::string_view s, uint64_t* out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

std::string htmlEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string formatMs(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%H:%M:%S", &tm);
  return std::string(buf) + "." + std::to_string(1000 + ms % 1000).substr(1) + "Z";
}

}  // namespace

void HttpApi::handle(const ApiRequest& req, std::function<void(ApiResponse)> respond) {
  std::string_view path = req.target;
  if (auto q = path.find('?'); q != std::string_view::npos) path = path.substr(0, q);

  if (path == "/healthz") return respond({200, "text/plain; charset=utf-8", "ok\n", {}});
  if (path == "/readyz") return respond({200, "text/plain; charset=utf-8", "ready\n", {}});
  // Who is calling, and whether they may read (every endpoint but a purge
  // reads).
  auto who = access_->authenticate(req.authorization);
  auto mayRead = [&]() -> Status {
    if (!who.ok()) return who.status();
    if (!who->mayRead())
      return Status::permissionDenied("credential '" + who->name + "' lacks the read scope");
    return Status::ok();
  };
  if (protect_status_ && (path == "/metrics" || path == "/" || path == "/status")) {
    if (Status s = mayRead(); !s.isOk()) return respond(fromStatus(s));
  }
  if (path == "/metrics")
    return respond({200, "text/plain; version=0.0.4; charset=utf-8", registry_->render(), {}});
  if (path == "/" || path == "/status") {
    if (req.method != "GET" && req.method != "HEAD")
      return respond(error(405, "method_not_allowed", "use GET"));
    return respond({200, "text/html; charset=utf-8", statusPage(), {}});
  }
  if (!path.starts_with("/v1/")) return respond(error(404, "not_found", "no such endpoint"));
  if (!who.ok()) return respond(fromStatus(who.status()));

  if (path == "/v1/purge") {
    if (req.method != "POST") {
      ApiResponse r = error(405, "method_not_allowed", "use POST");
      r.headers.emplace_back("Allow", "POST");
      return respond(std::move(r));
    }
    auto parsed = parsePurgeJson(req.body);
    if (!parsed.ok()) return respond(fromStatus(parsed.status()));
    if (parsed->idempotency_key().empty() && !req.idempotency_key.empty())
      parsed->set_idempotency_key(req.idempotency_key);
    auto call = purgeCallOf(*parsed);
    if (!call.ok()) return respond(fromStatus(call.status()));
    if (Status s = checkPurge(*who, call->mode, call->selectors); !s.isOk()) {
      TERN_LOG(kWarn, "audit: purge refused",
               {{"by", who->name}, {"from", req.peer}, {"reason", s.message()}});
      return respond(fromStatus(s));
    }
    if (Status s = checkModeAndWait(*parsed); !s.isOk()) return respond(fromStatus(s));
    coordinator_->purge(
        *call, Requester{who->name, req.peer}, [this, respond](Result<PurgeStatus> r) {
          if (!r.ok()) {
            ApiResponse out = fromStatus(r.status());
            if (r.status().code() == StatusCode::kResourceExhausted) {
              const int64_t ms = std::max<int64_t>(coordinator_->retryAfterMs(), 1);
              out.headers.emplace_back("Retry-After", std::to_string((ms + 999) / 1000));
            }
            return respond(std::move(out));
          }
          const int status = r->state == PurgeState::kComplete ? 200 : 202;
          respond({status, "application/json", purgeResultJson(toProto(*r)), {}});
        });
    return;
  }
  if (req.method != "GET" && req.method != "HEAD")
    return respond(error(405, "method_not_allowed", "use GET"));
  if (Status s = mayRead(); !s.isOk()) return respond(fromStatus(s));
  if (path == "/v1/edges")
    return respond({200, "application/json", edgesJson(toProto(coordinator_->listEdges())), {}});
  if (path == "/v1/purges") {
    uint64_t limit = 50;
    std::string_view l = queryParam(req.target, "limit");
    if (!l.empty() && (!parseU64(l, &limit) || limit == 0 || limit > 1000))
      return respond(error(400, "invalid_argument", "limit: expected 1 to 1000"));
    return respond(
        {200, "application/json", purgesJson(toProto(coordinator_->recentPurges(limit))), {}});
  }
  if (path.starts_with("/v1/purges/")) {
    uint64_t seq = 0;
    if (!parseU64(path.substr(11), &seq) || seq == 0)
      return respond(error(400, "invalid_argument", "purge id must be a positive integer"));
    auto r = coordinator_->getPurge(seq);
    if (!r.ok()) return respond(fromStatus(r.status()));
    return respond({200, "application/json", purgeResultJson(toProto(*r)), {}});
  }
  respond(error(404, "not_found", "no such endpoint"));
}

namespace {

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

// Purge propagation (API in to every edge applied) of the recent completed
// purges over time: one point each, drawn as inline SVG (no script, no
// external asset: the page works offline and without JavaScript).
std::string latencyChart(const std::vector<v1::PurgeResult>& purges) {
  constexpr double kW = 640, kH = 180, kLeft = 48, kBottom = 24, kTop = 10, kRight = 10;
  std::vector<std::pair<int64_t, double>> points;  // (accepted ms, latency ms), oldest first
  for (auto it = purges.rbegin(); it != purges.rend(); ++it)
    if (it->state() == v1::PURGE_STATE_COMPLETE)
      points.emplace_back(it->accepted_at_ms(),
                          static_cast<double>(it->complete_latency_us()) / 1000);
  std::string h =
      "<svg id=\"latency-chart\" role=\"img\" aria-label=\"purge propagation latency\" "
      "viewBox=\"0 0 640 180\" width=\"640\" height=\"180\">"
      "<rect x=\"0\" y=\"0\" width=\"640\" height=\"180\" fill=\"#fafafa\"/>";
  if (points.empty())
    return h +
           "<text x=\"320\" y=\"90\" text-anchor=\"middle\" fill=\"#888\">no "
           "completed purge yet</text></svg>";
  double max_ms = 1;
  for (const auto& p : points) max_ms = std::max(max_ms, p.second);
  // (Wall-clock times: not necessarily in the log's order.)
  int64_t t0 = points.front().first, t1 = t0;
  for (const auto& p : points) t0 = std::min(t0, p.first), t1 = std::max(t1, p.first);
  t1 = std::max(t1, t0 + 1);
  auto x = [&](int64_t t) {
    return points.size() == 1 ? kLeft + (kW - kLeft - kRight) / 2
                              : kLeft + (kW - kLeft - kRight) * static_cast<double>(t - t0) /
                                            static_cast<double>(t1 - t0);
  };
  auto y = [&](double ms) { return kH - kBottom - (kH - kBottom - kTop) * ms / max_ms; };
  // Axes and their labels: the highest latency, the time span.
  h += "<line x1=\"" + num(kLeft) + "\" y1=\"" + num(kTop) + "\" x2=\"" + num(kLeft) + "\" y2=\"" +
       num(kH - kBottom) + "\" stroke=\"#999\"/><line x1=\"" + num(kLeft) + "\" y1=\"" +
       num(kH - kBottom) + "\" x2=\"" + num(kW - kRight) + "\" y2=\"" + num(kH - kBottom) +
       "\" stroke=\"#999\"/>";
  h += "<text x=\"" + num(kLeft - 4) + "\" y=\"" + num(kTop + 10) +
       "\" text-anchor=\"end\" font-size=\"11\">" + num(max_ms) + " ms</text>";
  h += "<text x=\"" + num(kLeft - 4) + "\" y=\"" + num(kH - kBottom) +
       "\" text-anchor=\"end\" font-size=\"11\">0</text>";
  h += "<text x=\"" + num(kLeft) + "\" y=\"" + num(kH - 6) + "\" font-size=\"11\">" + formatMs(t0) +
       "</text><text x=\"" + num(kW - kRight) + "\" y=\"" + num(kH - 6) +
       "\" text-anchor=\"end\" font-size=\"11\">" + formatMs(t1) + "</text>";
  h +=
      "<polyline class=\"latency\" fill=\"none\" stroke=\"#0969da\" stroke-width=\"1.5\" points=\"";
  for (const auto& p : points) h += num(x(p.first)) + "," + num(y(p.second)) + " ";
  h += "\"/>";
  for (const auto& p : points)
    h += "<circle class=\"point\" cx=\"" + num(x(p.first)) + "\" cy=\"" + num(y(p.second)) +
         "\" r=\"2.5\" fill=\"#0969da\"><title>" + num(p.second) + " ms</title></circle>";
  return h + "</svg>";
}

// Each edge's lag (purges logged but not applied) as a bar; fenced edges red.
std::string lagChart(const v1::ListEdgesResponse& edges) {
  constexpr double kRow = 22, kLabel = 160, kBarMax = 440;
  uint64_t max_lag = 1;
  int shown = 0;
  for (const auto& e : edges.edges()) {
    if (e.state() == v1::EDGE_STATE_RETIRED) continue;  // gone: not drawn
    max_lag = std::max<uint64_t>(max_lag, e.lag());
    ++shown;
  }
  const double height = kRow * std::max(1, shown) + 8;
  std::string h =
      "<svg id=\"lag-chart\" role=\"img\" aria-label=\"lag per edge\" viewBox=\"0 0 640 " +
      num(height) + "\" width=\"640\" height=\"" + num(height) + "\">";
  int row = 0;
  for (const auto& e : edges.edges()) {
    if (e.state() == v1::EDGE_STATE_RETIRED) continue;
    const double y = 4 + kRow * row++;
    const std::string state(edgeStateName(e.state()));
    const double w =
        e.lag() == 0 ? 1 : kBarMax * static_cast<double>(e.lag()) / static_cast<double>(max_lag);
    const char* color = state == "fenced"        ? "#cf222e"
                        : state == "catching_up" ? "#9a6700"
                                                 : "#1a7f37";
    h += "<text x=\"" + num(kLabel - 6) + "\" y=\"" + num(y + 14) +
         "\" text-anchor=\"end\" font-size=\"12\">" + htmlEscape(e.edge_id()) + "</text>";
    h += "<rect class=\"lag-bar " + state + "\" data-edge=\"" + htmlEscape(e.edge_id()) +
         "\" x=\"" + num(kLabel) + "\" y=\"" + num(y + 3) + "\" width=\"" + num(w) +
         "\" height=\"14\" fill=\"" + color + "\"><title>" + htmlEscape(e.edge_id()) + ": lag " +
         std::to_string(e.lag()) + ", " + state + "</title></rect>";
    h += "<text x=\"" + num(kLabel + w + 6) + "\" y=\"" + num(y + 14) + "\" font-size=\"12\">" +
         std::to_string(e.lag()) + "</text>";
  }
  return h + "</svg>";
}

}  // namespace

std::string HttpApi::statusPage() {
  const auto edges = toProto(coordinator_->listEdges());
  const auto purges = toProto(coordinator_->recentPurges(100));
  std::string h;
  h += "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
       "<meta http-equiv=\"refresh\" content=\"2\"><title>Tern coordinator</title><style>"
       "body{font:14px system-ui,sans-serif;margin:2em;color:#222}"
       "table{border-collapse:collapse;margin-bottom:2em}"
       "td,th{border-bottom:1px solid #ddd;padding:4px 12px;text-align:left}"
       ".connected{color:#1a7f37}.fenced{color:#cf222e}.catching_up{color:#9a6700}"
       "</style></head><body><h1>Tern coordinator</h1>";
  h += "<p id=\"summary\"></p><p>Log head: <b id=\"head-seq\">" + std::to_string(edges.head_seq()) +
       "</b></p>";
  h += "<h2>Purge propagation</h2><p>From the purge call to every edge applied, recent "
       "purges.</p>" +
       latencyChart(purges) + "<h2>Lag per edge</h2>" + lagChart(edges);
  h += "<h2>Edges</h2><table id=\"edges\"><tr><th>edge</th><th>address</th><th>state</th>"
       "<th>applied</th><th>lag</th><th>last seen</th><th>replica</th></tr>";
  for (const auto& e : edges.edges()) {
    const std::string state(edgeStateName(e.state()));
    h += "<tr data-edge=\"" + htmlEscape(e.edge_id()) + "\"><td>" + htmlEscape(e.edge_id()) +
         "</td><td>" + htmlEscape(e.address()) + "</td><td class=\"" + state + "\">" + state +
         "</td><td>" + std::to_string(e.applied_seq()) + "</td><td class=\"lag\">" +
         std::to_string(e.lag()) + "</td><td>" + formatMs(e.last_seen_ms()) +
         "</td><td class=\"replica\">" + htmlEscape(e.replica_id()) + "</td></tr>";
  }
  if (edges.replicas_size() > 0) {
    h += "</table><h2>Replicas</h2><table id=\"replicas\"><tr><th>replica</th><th>address</th>"
         "<th>edges connected</th><th>log head seen</th></tr>";
    for (const auto& r : edges.replicas())
      h += "<tr data-replica=\"" + htmlEscape(r.replica_id()) + "\"><td>" +
           htmlEscape(r.replica_id()) + (r.self() ? " (this one)" : "") + "</td><td>" +
           htmlEscape(r.address()) + "</td><td>" + std::to_string(r.edges_connected()) +
           "</td><td>" + std::to_string(r.head_seq()) + "</td></tr>";
  }
  if (edges.etcd_members_size() > 0) {
    h += "</table><h2>etcd</h2><table id=\"etcd\"><tr><th>member</th><th>state</th>"
         "<th>role</th><th>version</th><th>raft term</th><th>raft index</th><th>db size</th>"
         "</tr>";
    for (const auto& m : edges.etcd_members()) {
      const char* state = m.reachable() ? "reachable" : "unreachable";
      h += "<tr data-member=\"" + htmlEscape(m.endpoint()) + "\"><td>" + htmlEscape(m.endpoint()) +
           "</td><td class=\"" + (m.reachable() ? "connected" : "fenced") + "\">" + state +
           (m.reachable() ? "" : ": " + htmlEscape(m.error())) + "</td><td>" +
           (m.leader()      ? "leader"
            : m.reachable() ? "follower"
                            : "-") +
           "</td><td>" + htmlEscape(m.version()) + "</td><td>" + std::to_string(m.raft_term()) +
           "</td><td>" + std::to_string(m.raft_index()) + "</td><td>" +
           std::to_string(m.db_size_bytes() / 1024) + " KiB</td></tr>";
    }
  }
  h += "</table><h2>Recent purges</h2><table id=\"purges\"><tr><th>id</th><th>accepted</th>"
       "<th>mode</th><th>selectors</th><th>by</th><th>state</th><th>latency</th></tr>";
  for (size_t row = 0; row < purges.size() && row < 20; ++row) {
    const auto& p = purges[row];
    std::string sel;
    for (int i = 0; i < p.selectors_size() && i < 5; ++i) {
      if (i) sel += ", ";
      sel += selectorText(p.selectors(i));
    }
    if (p.selectors_size() > 5) sel += ", … (" + std::to_string(p.selectors_size()) + ")";
    char lat[32] = "-";
    if (p.state() == v1::PURGE_STATE_COMPLETE)
      std::snprintf(lat, sizeof lat, "%.2f ms",
                    static_cast<double>(p.complete_latency_us()) / 1000);
    h += "<tr data-seq=\"" + std::to_string(p.seq()) + "\"><td>" + std::to_string(p.seq()) +
         "</td><td>" + formatMs(p.accepted_at_ms()) + "</td><td>" +
         (p.mode() == v1::PURGE_MODE_SOFT ? "soft" : "hard") + "</td><td>" + htmlEscape(sel) +
         "</td><td class=\"by\" title=\"" + htmlEscape(p.requested_from()) + "\">" +
         htmlEscape(p.requested_by()) + "</td><td>" + std::string(purgeStateName(p.state())) +
         "</td><td class=\"latency\">" + lat + "</td></tr>";
  }
  // A one-line summary computed in the browser from the tables.
  h += "</table><script>"
       "const rows=[...document.querySelectorAll('#edges tr[data-edge]')];"
       "const up=rows.filter(r=>r.querySelector('.connected')).length;"
       "const lag=Math.max(0,...rows.map(r=>+r.querySelector('.lag').textContent));"
       "document.getElementById('summary').textContent="
       "`${up} of ${rows.length} edges connected, max lag ${lag}`;"
       "</script></body></html>\n";
  return h;
}

}  // namespace tern::coordinator
