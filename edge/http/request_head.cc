#include "edge/http/request_head.h"

namespace tern::edge::http {

std::optional<HeadRejection> checkRequestHead(const RequestHead& head, size_t max_fields,
                                              Fields* headers) {
  size_t transfer_encodings = 0, content_lengths = 0, hosts = 0;
  for (const auto& [name, value] : head.fields) {
    if (iequals(name, "transfer-encoding")) ++transfer_encodings;
    if (iequals(name, "content-length")) ++content_lengths;
    if (iequals(name, "host")) ++hosts;
  }
  // Request smuggling: Beast rejects conflicting Content-Length values and
  // bad chunking; a Transfer-Encoding other than chunked, or together with
  // Content-Length, is refused here (RFC 9112 section 6.3).
  if (transfer_encodings > 0 && (content_lengths > 0 || !head.chunked))
    return HeadRejection{400, "bad request: ambiguous message framing"};
  if (head.version != 11 && head.version != 10)
    return HeadRejection{505, "http version not supported"};
  if (head.fields.size() > max_fields) return HeadRejection{431, "too many request header fields"};
  // (Written over what the list held: a connection's next request reuses
  // its room.)
  HeaderFieldsRefill refill(headers);
  for (const auto& [name, value] : head.fields) {
    // obs-fold (RFC 9112 section 5.2): Beast's parser replaces each one with
    // spaces, one of the two behaviours the RFC allows; a CR or LF left in a
    // value would be a parser bug, and is refused.
    if (hasLineBreak(value)) return HeadRejection{400, "bad request: line break in a field value"};
    refill.add(name, value);
  }
  if (head.version == 10 && hosts == 0) {
    refill.add("Host", "");
    hosts = 1;
  }
  refill.done();
  if (hosts != 1) return HeadRejection{400, "bad request: exactly one Host is required"};
  return std::nullopt;
}

std::optional<HeadRejection> checkHttp2RequestHead(const Http2RequestHead& head, size_t max_fields,
                                                   Fields* headers) {
  // Cookie crumbs count as the one field they become.
  size_t cookies = 0;
  for (const auto& f : head.fields) cookies += f.first == "cookie";
  if (head.fields.size() - (cookies > 1 ? cookies - 1 : 0) > max_fields)
    return HeadRejection{431, "too many request header fields"};
  headers->clear();
  headers->reserve(head.fields.size() + 1);
  std::string cookie;
  size_t hosts = 0;
  std::string_view host;
  for (const auto& [name, value] : head.fields) {
    // nghttp2 refuses CR, LF and NUL in values; checked again as for HTTP/1.1.
    if (hasLineBreak(value)) return HeadRejection{400, "bad request: line break in a field value"};
    if (name == "cookie") {
      if (!cookie.empty()) cookie.append("; ");
      cookie.append(value);
      continue;
    }
    if (name == "host") {
      ++hosts;
      host = value;
      continue;
    }
    headers->push_back({std::string(name), std::string(value)});
  }
  if (hosts > 1) return HeadRejection{400, "bad request: more than one Host"};
  if (head.has_authority) {
    if (hosts == 1 && !iequals(trim(host), head.authority))
      return HeadRejection{400, "bad request: Host differs from :authority"};
    host = head.authority;
  } else if (hosts == 0) {
    return HeadRejection{400, "bad request: neither :authority nor Host"};
  }
  if (host.empty()) return HeadRejection{400, "bad request: empty authority"};
  headers->push_back({"host", std::string(host)});
  if (!cookie.empty()) headers->push_back({"cookie", std::move(cookie)});
  return std::nullopt;
}

}  // namespace tern::edge::http
