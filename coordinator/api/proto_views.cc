#include "coordinator/api/proto_views.h"

#include "proto/purge_convert.h"

namespace tern::coordinator {

namespace v1 = tern::v1;

Status checkModeAndWait(const v1::PurgeRequest& request) {
  if (!v1::PurgeMode_IsValid(request.mode()) || !v1::WaitMode_IsValid(request.wait()))
    return Status::invalidArgument("unknown mode or wait");
  return Status::ok();
}

Result<PurgeCall> purgeCallOf(const v1::PurgeRequest& request) {
  TERN_ASSIGN_OR_RETURN(auto selectors, proto::selectorsFromProto(request.selectors()));
  PurgeCall call;
  call.selectors = std::move(selectors);
  call.mode = proto::fromProto(request.mode());
  call.wait = request.wait() == v1::WAIT_MODE_ALL ? WaitMode::kAll : WaitMode::kNone;
  call.timeout_ms = request.timeout_ms();
  call.idempotency_key = request.idempotency_key();
  return call;
}

v1::PurgeState toProto(PurgeState state) {
  switch (state) {
    case PurgeState::kAccepted:
      return v1::PURGE_STATE_ACCEPTED;
    case PurgeState::kComplete:
      return v1::PURGE_STATE_COMPLETE;
    case PurgeState::kTimeout:
      return v1::PURGE_STATE_TIMEOUT;
  }
  return v1::PURGE_STATE_UNSPECIFIED;
}

v1::EdgePurgeState toProto(EdgePurgeState state) {
  switch (state) {
    case EdgePurgeState::kPending:
      return v1::EDGE_PURGE_STATE_PENDING;
    case EdgePurgeState::kApplied:
      return v1::EDGE_PURGE_STATE_APPLIED;
    case EdgePurgeState::kFenced:
      return v1::EDGE_PURGE_STATE_FENCED;
  }
  return v1::EDGE_PURGE_STATE_UNSPECIFIED;
}

v1::EdgeState toProto(EdgeState state) {
  switch (state) {
    case EdgeState::kConnected:
      return v1::EDGE_STATE_CONNECTED;
    case EdgeState::kCatchingUp:
      return v1::EDGE_STATE_CATCHING_UP;
    case EdgeState::kFenced:
      return v1::EDGE_STATE_FENCED;
    case EdgeState::kRetired:
      return v1::EDGE_STATE_RETIRED;
  }
  return v1::EDGE_STATE_UNSPECIFIED;
}

v1::PurgeResult toProto(const PurgeStatus& s) {
  v1::PurgeResult r;
  r.set_seq(s.seq);
  r.set_state(toProto(s.state));
  for (const auto& e : s.edges) {
    auto* es = r.add_edges();
    es->set_edge_id(e.edge_id);
    es->set_state(toProto(e.state));
    es->set_apply_latency_us(e.apply_latency_us);
  }
  r.set_accepted_at_ms(s.accepted_at_ms);
  r.set_complete_latency_us(s.complete_latency_us);
  for (const auto& sel : s.selectors) *r.add_selectors() = proto::toProto(sel);
  r.set_mode(proto::toProto(s.mode));
  r.set_requested_by(s.requested_by);
  r.set_requested_from(s.requested_from);
  return r;
}

std::vector<v1::PurgeResult> toProto(const std::vector<PurgeStatus>& statuses) {
  std::vector<v1::PurgeResult> out;
  out.reserve(statuses.size());
  for (const auto& s : statuses) out.push_back(toProto(s));
  return out;
}

v1::ListEdgesResponse toProto(const EdgeList& list) {
  v1::ListEdgesResponse out;
  out.set_head_seq(list.head_seq);
  for (const auto& e : list.edges) {
    auto* info = out.add_edges();
    info->set_edge_id(e.edge_id);
    info->set_address(e.address);
    info->set_state(toProto(e.state));
    info->set_applied_seq(e.applied_seq);
    info->set_lag(e.lag);
    info->set_last_seen_ms(e.last_seen_ms);
    info->set_incarnation(e.incarnation);
    info->set_replica_id(e.replica_id);
  }
  for (const auto& r : list.replicas) {
    auto* info = out.add_replicas();
    info->set_replica_id(r.replica_id);
    info->set_address(r.address);
    info->set_edges_connected(r.edges_connected);
    info->set_head_seq(r.head_seq);
    info->set_self(r.self);
  }
  for (const auto& m : list.etcd_members) {
    auto* info = out.add_etcd_members();
    info->set_endpoint(m.endpoint);
    info->set_reachable(m.reachable);
    info->set_leader(m.leader);
    info->set_version(m.version);
    info->set_raft_term(m.raft_term);
    info->set_raft_index(m.raft_index);
    info->set_db_size_bytes(m.db_size_bytes);
    info->set_error(m.error);
    info->set_probed_at_ms(m.probed_at_ms);
  }
  return out;
}

tern::internal::v1::ReplicaSummary toProto(const ReplicaSummary& summary) {
  tern::internal::v1::ReplicaSummary out;
  out.set_replica_id(summary.replica_id);
  out.set_address(summary.address);
  out.set_head_seq(summary.head_seq);
  for (const auto& e : summary.edges) {
    auto* h = out.add_edges();
    h->set_edge_id(e.edge_id);
    h->set_address(e.address);
    h->set_applied_seq(e.applied_seq);
    h->set_incarnation(e.incarnation);
    h->set_connected(e.connected);
    h->set_catching_up(e.catching_up);
    h->set_last_seen_ms(e.last_seen_ms);
    h->set_stream_opened_ms(e.stream_opened_ms);
  }
  return out;
}

ReplicaSummary fromProto(const tern::internal::v1::ReplicaSummary& summary) {
  ReplicaSummary out;
  out.replica_id = summary.replica_id();
  out.address = summary.address();
  out.head_seq = summary.head_seq();
  out.edges.reserve(static_cast<size_t>(summary.edges_size()));
  for (const auto& h : summary.edges()) {
    out.edges.push_back({h.edge_id(), h.address(), h.applied_seq(), h.incarnation(), h.connected(),
                         h.catching_up(), h.last_seen_ms(), h.stream_opened_ms()});
  }
  return out;
}

}  // namespace tern::coordinator
