#include "coordinator/api/json.h"

#include <algorithm>
#include <boost/json.hpp>
#include <functional>

namespace tern::coordinator {

namespace json = boost::json;
namespace v1 = tern::v1;

namespace {

json::object selectorJson(const v1::Selector& s) {
  switch (s.kind_case()) {
    case v1::Selector::kUrl:
      return {{"url", s.url()}};
    case v1::Selector::kPrefix:
      return {{"prefix", s.prefix()}};
    case v1::Selector::kHost:
      return {{"host", s.host()}};
    case v1::Selector::kTag:
      return {{"tag", s.tag()}};
    default:
      return {{"all", true}};
  }
}

json::object resultObject(const v1::PurgeResult& r) {
  json::array selectors;
  for (const auto& s : r.selectors()) selectors.push_back(selectorJson(s));
  json::array edges, pending;
  for (const auto& e : r.edges()) {
    edges.push_back(json::object{{"edge_id", e.edge_id()},
                                 {"state", edgePurgeStateName(e.state())},
                                 {"apply_latency_us", e.apply_latency_us()}});
    if (e.state() == v1::EDGE_PURGE_STATE_PENDING) pending.push_back(json::value(e.edge_id()));
  }
  return {{"id", r.seq()},
          {"seq", r.seq()},
          {"state", purgeStateName(r.state())},
          {"mode", r.mode() == v1::PURGE_MODE_SOFT ? "soft" : "hard"},
          {"accepted_at_ms", r.accepted_at_ms()},
          {"complete_latency_us", r.complete_latency_us()},
          {"selectors", std::move(selectors)},
          {"requested_by", r.requested_by()},
          {"requested_from", r.requested_from()},
          {"edges", std::move(edges)},
          {"pending_edges", std::move(pending)}};
}

Status addStrings(const json::object& o, std::string_view field,
                  const std::function<void(v1::Selector*, std::string)>& set,
                  v1::PurgeRequest* out) {
  auto it = o.find(field);
  if (it == o.end()) return Status::ok();
  if (!it->value().is_array())
    return Status::invalidArgument(std::string(field) + ": expected an array of strings");
  for (const auto& v : it->value().as_array()) {
    if (!v.is_string())
      return Status::invalidArgument(std::string(field) + ": expected an array of strings");
    set(out->add_selectors(), std::string(v.as_string()));
  }
  return Status::ok();
}

}  // namespace

std::string_view purgeStateName(v1::PurgeState s) {
  switch (s) {
    case v1::PURGE_STATE_ACCEPTED:
      return "accepted";
    case v1::PURGE_STATE_COMPLETE:
      return "complete";
    case v1::PURGE_STATE_TIMEOUT:
      return "timeout";
    default:
      return "unknown";
  }
}

std::string_view edgePurgeStateName(v1::EdgePurgeState s) {
  switch (s) {
    case v1::EDGE_PURGE_STATE_PENDING:
      return "pending";
    case v1::EDGE_PURGE_STATE_APPLIED:
      return "applied";
    case v1::EDGE_PURGE_STATE_FENCED:
      return "fenced";
    default:
      return "unknown";
  }
}

std::string_view edgeStateName(v1::EdgeState s) {
  switch (s) {
    case v1::EDGE_STATE_CONNECTED:
      return "connected";
    case v1::EDGE_STATE_CATCHING_UP:
      return "catching_up";
    case v1::EDGE_STATE_FENCED:
      return "fenced";
    case v1::EDGE_STATE_RETIRED:
      return "retired";
    default:
      return "unknown";
  }
}

std::string selectorText(const v1::Selector& s) {
  switch (s.kind_case()) {
    case v1::Selector::kUrl:
      return "url " + s.url();
    case v1::Selector::kPrefix:
      return "prefix " + s.prefix();
    case v1::Selector::kHost:
      return "host " + s.host();
    case v1::Selector::kTag:
      return "tag " + s.tag();
    default:
      return "all";
  }
}

std::string errorJson(std::string_view code, std::string_view message) {
  json::object err{{"code", code}, {"message", message}};
  return json::serialize(json::object{{"error", err}}) + "\n";
}

std::string purgesJson(const std::vector<v1::PurgeResult>& results) {
  json::array purges;
  for (const auto& r : results) purges.push_back(resultObject(r));
  return json::serialize(json::object{{"purges", std::move(purges)}}) + "\n";
}

Result<v1::PurgeRequest> parsePurgeJson(std::string_view body) {
  boost::system::error_code ec;
  json::value doc = json::parse(body, ec);
  if (ec) return Status::invalidArgument("body is not valid JSON: " + ec.message());
  if (!doc.is_object()) return Status::invalidArgument("body must be a JSON object");
  const json::object& o = doc.as_object();
  static const std::vector<std::string_view> kKnown = {
      "selectors", "mode", "wait",  "timeout_ms", "idempotency_key",  "tags",
      "files",     "urls", "hosts", "prefixes",   "purge_everything", "all"};
  for (const auto& kv : o) {
    if (std::find(kKnown.begin(), kKnown.end(), kv.key()) == kKnown.end())
      return Status::invalidArgument("unknown field \"" + std::string(kv.key()) + "\"");
  }
  v1::PurgeRequest req;
  if (auto it = o.find("selectors"); it != o.end()) {
    if (!it->value().is_array()) return Status::invalidArgument("selectors: expected an array");
    size_t i = 0;
    for (const auto& sv : it->value().as_array()) {
      const std::string where = "selectors[" + std::to_string(i++) + "]";
      if (!sv.is_object() || sv.as_object().size() != 1)
        return Status::invalidArgument(
            where +
            ": expected one of {\"url\"|\"prefix\"|\"host\"|\"tag\": \"...\"} or {\"all\": true}");
      const auto& [k, v] = *sv.as_object().begin();
      auto* sel = req.add_selectors();
      if (k == "all") {
        if (!v.is_bool() || !v.as_bool())
          return Status::invalidArgument(where + ": all must be true");
        sel->set_all(true);
        continue;
      }
      if (!v.is_string())
        return Status::invalidArgument(where + "." + std::string(k) + ": expected a string");
      std::string value(v.as_string());
      if (k == "url")
        sel->set_url(value);
      else if (k == "prefix")
        sel->set_prefix(value);
      else if (k == "host")
        sel->set_host(value);
      else if (k == "tag")
        sel->set_tag(value);
      else
        return Status::invalidArgument(where + ": unknown selector \"" + std::string(k) +
                                       "\" (url, prefix, host, tag, all)");
    }
  }
  TERN_RETURN_IF_ERROR(addStrings(
      o, "tags", [](v1::Selector* s, std::string v) { s->set_tag(std::move(v)); }, &req));
  TERN_RETURN_IF_ERROR(addStrings(
      o, "files", [](v1::Selector* s, std::string v) { s->set_url(std::move(v)); }, &req));
  TERN_RETURN_IF_ERROR(addStrings(
      o, "urls", [](v1::Selector* s, std::string v) { s->set_url(std::move(v)); }, &req));
  TERN_RETURN_IF_ERROR(addStrings(
      o, "hosts", [](v1::Selector* s, std::string v) { s->set_host(std::move(v)); }, &req));
  TERN_RETURN_IF_ERROR(addStrings(
      o, "prefixes", [](v1::Selector* s, std::string v) { s->set_prefix(std::move(v)); }, &req));
  for (std::string_view everything : {"purge_everything", "all"}) {
    if (auto it = o.find(everything); it != o.end()) {
      if (!it->value().is_bool())
        return Status::invalidArgument(std::string(everything) + ": expected true or false");
      if (it->value().as_bool()) req.add_selectors()->set_all(true);
    }
  }
  if (auto it = o.find("mode"); it != o.end()) {
    if (!it->value().is_string())
      return Status::invalidArgument("mode: expected \"hard\" or \"soft\"");
    std::string_view m = it->value().as_string();
    if (m == "hard")
      req.set_mode(v1::PURGE_MODE_HARD);
    else if (m == "soft")
      req.set_mode(v1::PURGE_MODE_SOFT);
    else
      return Status::invalidArgument("mode: expected \"hard\" or \"soft\"");
  }
  if (auto it = o.find("wait"); it != o.end()) {
    if (!it->value().is_string())
      return Status::invalidArgument("wait: expected \"none\" or \"all\"");
    std::string_view w = it->value().as_string();
    if (w == "none")
      req.set_wait(v1::WAIT_MODE_NONE);
    else if (w == "all")
      req.set_wait(v1::WAIT_MODE_ALL);
    else
      return Status::invalidArgument("wait: expected \"none\" or \"all\"");
  }
  if (auto it = o.find("timeout_ms"); it != o.end()) {
    if (!it->value().is_int64() || it->value().as_int64() < 0 || it->value().as_int64() > 3'600'000)
      return Status::invalidArgument("timeout_ms: expected milliseconds from 0 to 3600000");
    req.set_timeout_ms(static_cast<uint32_t>(it->value().as_int64()));
  }
  if (auto it = o.find("idempotency_key"); it != o.end()) {
    if (!it->value().is_string())
      return Status::invalidArgument("idempotency_key: expected a string");
    req.set_idempotency_key(std::string(it->value().as_string()));
  }
  if (req.selectors().empty())
    return Status::invalidArgument(
        "nothing to purge: give selectors, tags, files, hosts, prefixes or purge_everything");
  return req;
}

std::string purgeResultJson(const v1::PurgeResult& r) {
  return json::serialize(resultObject(r)) + "\n";
}

std::string edgesJson(const v1::ListEdgesResponse& list) {
  json::array edges;
  for (const auto& e : list.edges())
    edges.push_back(json::object{{"edge_id", e.edge_id()},
                                 {"address", e.address()},
                                 {"state", edgeStateName(e.state())},
                                 {"applied_seq", e.applied_seq()},
                                 {"lag", e.lag()},
                                 {"last_seen_ms", e.last_seen_ms()},
                                 {"incarnation", std::to_string(e.incarnation())},
                                 {"replica_id", e.replica_id()}});
  json::object out{{"head_seq", list.head_seq()}, {"edges", std::move(edges)}};
  if (list.replicas_size() > 0) {
    json::array replicas;
    for (const auto& r : list.replicas())
      replicas.push_back(json::object{{"replica_id", r.replica_id()},
                                      {"address", r.address()},
                                      {"edges_connected", r.edges_connected()},
                                      {"head_seq", r.head_seq()},
                                      {"self", r.self()}});
    out["replicas"] = std::move(replicas);
  }
  if (list.etcd_members_size() > 0) {
    json::array members;
    for (const auto& m : list.etcd_members())
      members.push_back(json::object{{"endpoint", m.endpoint()},
                                     {"reachable", m.reachable()},
                                     {"leader", m.leader()},
                                     {"version", m.version()},
                                     {"raft_term", m.raft_term()},
                                     {"raft_index", m.raft_index()},
                                     {"db_size_bytes", m.db_size_bytes()},
                                     {"error", m.error()},
                                     {"probed_at_ms", m.probed_at_ms()}});
    out["etcd_members"] = std::move(members);
  }
  return json::serialize(out) + "\n";
}

}  // namespace tern::coordinator
