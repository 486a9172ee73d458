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

namespace tern::storage {

struct Header {
  std::string name;
  std::string value;
  bool operator==(const Header&) const = default;
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
