#pragma once
// CacheKey: the normalized primary cache key of a stored response (RFC 9111
// section 2): scheme, host, path and query. ObjectKey adds the variant id that
// tells apart the responses selected by Vary (section 4.1).
//
// Normalization (RFC 3986 section 6.2.2 and 6.2.3): scheme and host lower-case,
// default ports removed, percent-encodings of unreserved characters decoded and
// the rest upper-cased, dot segments removed, an empty path becomes "/". The
// query is kept byte for byte: its order is meaningful to origins.
//
// The purge unit of a URL is its `urlId()`: host + path + "?" + query, without
// the scheme, so that a purge of a URL covers both http and https.
//
// Thread-safety: plain values.

#include <string>
#include <string_view>

#include "common/result.h"

namespace tern::storage {

struct CacheKey {
  std::string scheme;  // "http" or "https"
  std::string host;    // lower-case, with ":port" only if not the default
  std::string path;    // normalized, starts with '/'
  std::string query;   // without the '?'; empty when there is none
  bool has_query = false;

  // From the parts of a request: scheme, Host header (authority) and the
  // request target in origin-form ("/a/b?c") or absolute-form.
  static Result<CacheKey> fromRequest(std::string_view scheme, std::string_view authority,
                                      std::string_view target);
  // From an absolute URL ("https://example.com/a?b") or a scheme-less one
  // ("example.com/a?b", taken as http).
  static Result<CacheKey> fromUrl(std::string_view url);

  // host + path [+ "?" + query]: what purges by URL and prefix match against.
  std::string urlId() const;
  // scheme://host/path?query, for logs and the Cache-Status key parameter.
  std::string toString() const;

  bool operator==(const CacheKey&) const = default;
};

struct ObjectKey {
  CacheKey url;
  // Opaque id of the Vary variant; empty for a response without Vary and for
  // the URL's vary record (see EntryMeta::kind).
  std::string variant;

  bool operator==(const ObjectKey&) const = default;
};

// Normalizes a host as a purge selector or cache key host ("Example.COM:80" ->
// "example.com" for http). Returns InvalidArgument on bad syntax.
Result<std::string> normalizeHost(std::string_view host, std::string_view scheme = "http");

}  // namespace tern::storage
