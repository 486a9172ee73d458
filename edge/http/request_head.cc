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
  headers->clear();
  headers->reserve(head.fields.size() + 1);
  for (const auto& [name, value] : head.fields) {
    // obs-fold (RFC 9112 section 5.2): Beast's parser replaces each one with
    // spaces, one of the two behaviours the RFC allows; a CR or LF left in a
    // value would be a parser bug, and is refused.
    if (hasLineBreak(value)) return HeadRejection{400, "bad request: line break in a field value"};
    headers->push_back({std::string(name), std::string(value)});
  }
  if (head.version == 10 && hosts == 0) {
    headers->push_back({"Host", ""});
    hosts = 1;
  }
  if (hosts != 1) return HeadRejection{400, "bad request: exactly one Host is required"};
  return std::nullopt;
}

}  // namespace tern::edge::http
