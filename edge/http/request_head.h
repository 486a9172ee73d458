#pragma once
// The checks on a parsed request head that the HTTP/1.1 parser (Beast) leaves
// to the server (RFC 9112): message framing that could smuggle a request, the
// version, the number of fields, line breaks in values and the Host field.
// Plain code, shared by the server and the request-head fuzz target.
//
// Thread-safety: plain functions.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "edge/http/fields.h"

namespace tern::edge::http {

struct RequestHead {
  unsigned version = 11;  // 10 or 11 (as Beast gives it: major * 10 + minor)
  bool chunked = false;   // the parser's verdict: the last transfer coding is chunked
  std::vector<std::pair<std::string_view, std::string_view>> fields;  // as received
};

struct HeadRejection {
  int status = 400;
  std::string reason;  // for the client and the log
};

// Checks `head` and, when it is acceptable, fills `headers` (an HTTP/1.0
// request without Host gets an empty one). Otherwise the status to answer.
std::optional<HeadRejection> checkRequestHead(const RequestHead& head, size_t max_fields,
                                              Fields* headers);

// An HTTP/2 request's head, after nghttp2 validated its frames, pseudo-header
// fields and field names (RFC 9113 section 8.2 and 8.3).
struct Http2RequestHead {
  std::string_view authority;  // :authority, empty when absent
  bool has_authority = false;
  std::vector<std::pair<std::string_view, std::string_view>> fields;  // regular fields
};

// The same checks for HTTP/2 and the mapping to HTTP/1.1 semantics: Host is
// taken from :authority (a Host that names another authority is refused,
// RFC 9113 section 8.3.1); cookie crumbs are joined into one Cookie field
// with "; " (section 8.2.3); a request without either authority is refused.
std::optional<HeadRejection> checkHttp2RequestHead(const Http2RequestHead& head, size_t max_fields,
                                                   Fields* headers);

}  // namespace tern::edge::http
