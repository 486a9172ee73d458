#pragma once
// JSON shapes of the purge API (HTTP/JSON API and `ternctl --json`), as
// functions of the tern.v1 messages. Boost.JSON does the parsing/printing.
//
// Purge body, either explicit selectors or Cloudflare-style lists:
//   {"selectors": [{"tag": "t1"}, {"url": "example.com/a"}], "mode": "soft",
//    "wait": "all", "timeout_ms": 5000, "idempotency_key": "k1"}
//   {"tags": ["t1"], "files": ["https://example.com/a"], "prefixes": [...],
//    "hosts": [...], "purge_everything": true}
// Unknown fields are rejected (a typo must not purge less than intended).

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "tern/v1/purge.pb.h"

namespace tern::coordinator {

// Errors are InvalidArgument with a message for users.
Result<tern::v1::PurgeRequest> parsePurgeJson(std::string_view body);

std::string purgeResultJson(const tern::v1::PurgeResult& result);
std::string purgesJson(const std::vector<tern::v1::PurgeResult>& purges);
std::string edgesJson(const tern::v1::ListEdgesResponse& edges);
std::string errorJson(std::string_view code, std::string_view message);

std::string_view purgeStateName(tern::v1::PurgeState state);
std::string_view edgePurgeStateName(tern::v1::EdgePurgeState state);
std::string_view edgeStateName(tern::v1::EdgeState state);
// "tag t1", "url example.com/a", "all".
std::string selectorText(const tern::v1::Selector& selector);

}  // namespace tern::coordinator
