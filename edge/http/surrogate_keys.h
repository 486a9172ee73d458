#pragma once
// Surrogate keys (purge tags) of a response, from every header CDNs use:
// Surrogate-Key and xkey (space separated), Cache-Tag, Edge-Cache-Tag and
// CDN-Tag (comma separated), and Cache-Groups (RFC 9875, a list of strings).
// Pure functions.

#include <string>
#include <vector>

#include "edge/http/fields.h"

namespace tern::edge::http {

inline constexpr size_t kMaxSurrogateKeys = 4096;

// The distinct keys in order of appearance, at most kMaxSurrogateKeys;
// invalid keys (control characters, over 1024 bytes) are skipped.
std::vector<std::string> surrogateKeys(const Fields& response_headers);

// True for the headers that carry surrogate keys: they are stripped before a
// response reaches a client.
bool isSurrogateKeyField(std::string_view name);

// RFC 9875 Cache-Group-Invalidation: the groups a response to an unsafe
// request asks to invalidate.
std::vector<std::string> groupInvalidations(const Fields& response_headers);

}  // namespace tern::edge::http
