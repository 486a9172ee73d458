#pragma once
// Who may do what on the coordinator: named credentials with scopes.
//
// Credentials:
//   auth.token / auth.token_file  full-access tokens (every scope): the
//                                 simple setup, one secret for everything
//   auth.tokens_file              named, scoped tokens (YAML, below), kept as
//                                 SHA-256 digests; re-read on SIGHUP
//   a client certificate          an edge's identity on the edge link when
//                                 grpc_tls.client_ca is set (mTLS): its
//                                 common name or a subject alternative name
//                                 is the edge id it may join as
// No credential configured at all: the APIs are open (the laptop default).
//
// Scopes:
//   purge    purge. With `hosts`, only url, prefix and host selectors inside
//            them ("a.example.com", or "*.example.com" for every name under
//            it); tag purges then only for tags starting with `tag_prefix`
//            (without one they are refused); never `all`. Implies read.
//   read     GetPurge, ListPurges, WatchPurges, ListEdges, GET /v1/*; the
//            status page and /metrics when auth.protect_status is on.
//   edge     join the edge link, as one of `edge_ids` (exact, or a prefix
//            ending in '*'; none: any id), and soft purges of tags only (what
//            an origin's Cache-Group-Invalidation asks of an edge).
//   replica  the link between coordinator replicas.
//
// The tokens file:
//   tokens:
//     - name: deploy-www                  # shown in the audit trail
//       sha256: 5e884898da2804...         # of the token (ternctl hash-token)
//       scopes: [purge]
//       hosts: [www.example.com, "*.static.example.com"]
//       tag_prefix: "www:"
//     - name: edges
//       sha256: ...
//       scopes: [edge]
//       edge_ids: ["edge-*"]
//
// Thread-safety: AccessPolicy and Principal are immutable values; Access is
// thread-safe (the policy is swapped whole on reload).

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "storage/purge_spec.h"

namespace tern::coordinator {

enum Scope : uint32_t {
  kScopePurge = 1,
  kScopeRead = 2,
  kScopeEdge = 4,
  kScopeReplica = 8,
  kScopeAll = 15,
};

// An authenticated caller.
struct Principal {
  std::string name;  // token name; "token:<digest prefix>"; "anonymous" (open)
  uint32_t scopes = 0;
  std::vector<std::string> hosts;         // purge only inside these (empty: any)
  std::optional<std::string> tag_prefix;  // with hosts: tags it may purge
  std::vector<std::string> edge_ids;      // may join as these (empty: any)

  bool has(Scope s) const { return (scopes & s) != 0; }
  bool mayRead() const { return (scopes & (kScopeRead | kScopePurge)) != 0; }
  bool mayJoinAs(std::string_view edge_id) const;
};

// Lower-case hex SHA-256 of `data`.
std::string sha256Hex(std::string_view data);

class AccessPolicy {
 public:
  // `full_tokens`: tokens with every scope; `tokens_yaml`: the text of a
  // tokens file (empty: none). InvalidArgument names the entry at fault.
  static Result<std::shared_ptr<const AccessPolicy>> build(
      const std::vector<std::string>& full_tokens, std::string_view tokens_yaml);

  // No credential configured: everyone is "anonymous" with every scope.
  bool open() const { return by_digest_.empty(); }
  size_t size() const { return by_digest_.size(); }

  // `authorization` is the whole header value ("Bearer <token>").
  // Unauthenticated when missing or unknown.
  Result<Principal> authenticate(std::string_view authorization) const;

  // The first full-access token given ("" : none): what a replica presents
  // to the others when no auth.replica_token is set.
  const std::string& firstFullToken() const { return first_full_token_; }

 private:
  std::string first_full_token_;
  std::unordered_map<std::string, Principal> by_digest_;  // sha256 hex -> principal
};

// Whether `who` may log this purge. PermissionDenied names what was refused.
Status checkPurge(const Principal& who, storage::PurgeMode mode,
                  const std::vector<storage::PurgeSelector>& selectors);

// The credentials in force now, replaced whole by reload().
class Access {
 public:
  explicit Access(std::shared_ptr<const AccessPolicy> policy) : policy_(std::move(policy)) {}
  std::shared_ptr<const AccessPolicy> current() const {
    std::lock_guard lock(mu_);
    return policy_;
  }
  void replace(std::shared_ptr<const AccessPolicy> policy) {
    std::lock_guard lock(mu_);
    policy_ = std::move(policy);
  }
  bool open() const { return current()->open(); }
  Result<Principal> authenticate(std::string_view authorization) const {
    return current()->authenticate(authorization);
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const AccessPolicy> policy_;  // GUARDED_BY(mu_)
};

// Where the credentials come from (configuration), read again on reload.
struct AccessSources {
  std::vector<std::string> tokens;  // auth.token
  std::string token_file;           // auth.token_file: one full-access token per line
  std::string tokens_file;          // auth.tokens_file: scoped tokens (YAML)
};
Result<std::shared_ptr<const AccessPolicy>> loadAccessPolicy(const AccessSources& sources);

}  // namespace tern::coordinator
