#pragma once
// PURGE at the edge: what a PURGE request asks to purge, and the caller's
// credential it is forwarded with (the coordinator decides what the caller
// may purge; the edge never lends its own). Plain functions; the request
// journey (request_flow.cc) forwards what this returns.
//
// Headers read: Authorization ("Bearer <token>", required), Surrogate-Key
// (tags, space separated; else the URL itself), Tern-Purge-Prefix: 1 (the
// URL as a prefix), Tern-Purge-Mode: soft or Fastly-Soft-Purge: 1 (mark
// stale instead of removing), Tern-Purge-Wait: all (answer once every edge
// has applied it).
//
// Thread-safety: plain functions.

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "edge/http/fields.h"
#include "storage/cache_key.h"
#include "storage/purge_spec.h"

namespace tern::edge::cache {

// A PURGE request at the edge, as forwarded to the coordinator. Selector
// values are as the client gave them (the coordinator normalizes them).
struct PurgeForward {
  std::vector<storage::PurgeSelector> selectors;
  storage::PurgeMode mode = storage::PurgeMode::kHard;
  bool wait_all = false;
  // The caller's own "Bearer ..." credential, forwarded as it is. Empty only
  // for purges an edge makes on its own behalf (an origin's
  // Cache-Group-Invalidation), which go with the edge's credential.
  std::string authorization;
  std::string client_ip;  // for the coordinator's audit trail
};

// What `headers` (of a PURGE of `url`) ask for. Unauthenticated when there is
// no bearer token of visible ASCII (it travels on as gRPC metadata), or when
// `required_token` is set and the token is another.
// Compares two secrets (tokens) in a time that does not depend on where
// they differ.
bool sameSecret(std::string_view a, std::string_view b);

Result<PurgeForward> purgeRequest(const http::Fields& headers, const storage::CacheKey& url,
                                  std::string_view client_ip, std::string_view required_token);

}  // namespace tern::edge::cache
