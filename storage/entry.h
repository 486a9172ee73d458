#pragma once
// EntryMeta: everything stored about a cached response except its body.
//
// The fields hold what HTTP caching needs later without re-parsing: the
// status and headers as received (hop-by-hop headers already removed), the
// times needed to compute Age (RFC 9111 section 4.2.3), the validators used
// to revalidate, the surrogate keys a purge by tag matches, and the purge
// sequence that was current when the fetch started (`store_seq`), which is
// what decides whether a purge applies to this object.
//
// Thread-safety: plain value.

#include <cstdint>
#include <string>
#include <vector>

#include "common/header_field.h"

namespace tern::storage {

using Header = HeaderField;

// What reusing a stored response needs of its header fields (RFC 9111
// 4.2), worked out once when it is stored, so that a hit parses none of
// them: its corrected initial age (4.2.3), the directives that decide
// whether a stale copy may be served (4.2.4, 5.2.2; RFC 5861, RFC 8246).
// The freshness lifetime is EntryMeta::freshness_lifetime_ms.
struct StoredFreshness {
  // False in a record written before these were kept: the edge derives
  // them from the stored header fields instead.
  bool known = false;
  int64_t initial_age_ms = 0;
  bool no_cache = false;
  bool must_revalidate = false;
  bool proxy_revalidate = false;
  bool s_maxage = false;  // present (it implies proxy-revalidate)
  bool immutable = false;
  int64_t stale_while_revalidate_s = -1;  // -1: absent
  int64_t stale_if_error_s = -1;          // -1: absent
  bool operator==(const StoredFreshness&) const = default;
};

enum class EntryKind : uint8_t {
  kResponse = 0,    // a stored response with a body
  kVaryRecord = 1,  // per-URL record naming the request fields in Vary; no body
};

struct EntryMeta {
  EntryKind kind = EntryKind::kResponse;
  uint16_t status = 200;
  std::vector<Header> headers;

  // RFC 9111 section 4.2.3 inputs, milliseconds since the Unix epoch.
  int64_t request_time_ms = 0;
  int64_t response_time_ms = 0;
  // Freshness lifetime computed when stored, in milliseconds; -1 if none
  // (then the edge decides from the headers).
  int64_t freshness_lifetime_ms = -1;
  StoredFreshness freshness;

  // Validators, copied from the headers for cheap access.
  std::string etag;
  std::string last_modified;

  // Request header field names listed by Vary (lower-case); for kVaryRecord.
  std::vector<std::string> vary_fields;

  // Surrogate keys (purge tags) of this response.
  std::vector<std::string> tags;

  // The purge sequence current when the fetch of this response started.
  uint64_t store_seq = 0;

  // Set by a soft purge: the next read must revalidate with the origin.
  bool stale = false;

  // Filled in by the store on commit.
  uint64_t body_size = 0;
  uint64_t body_hash = 0;  // XXH3-64 of the whole body

  bool operator==(const EntryMeta&) const = default;
};

}  // namespace tern::storage
