#pragma once
// Vary (RFC 9111 section 4.1): the request fields that select a variant, and
// the variant id computed from a request. Field values are normalized
// before matching: Accept-Encoding to the set of codings it accepts, lists
// (Accept, Accept-Language, Accept-Charset) item by item without the
// whitespace, language tags and charsets in lower case. Pure functions.

#include <optional>
#include <string>
#include <vector>

#include "edge/http/fields.h"

namespace tern::edge::http {

// Lower-cased field names listed by the response's Vary; nullopt for "*".
std::optional<std::vector<std::string>> varyFields(const Fields& response_headers);

// Normalized Accept-Encoding: the acceptable codings of br, deflate, gzip
// and zstd, in that order ("br,gzip"), or "identity".
std::string normalizeAcceptEncoding(std::string_view value);

// Whether a response with this Content-Encoding may go to a request with
// this Accept-Encoding (no header: identity only, conservatively).
bool acceptsCoding(std::string_view accept_encoding, std::string_view content_coding);

// The variant id of a request for the given Vary fields: empty when there
// are none; else a stable 16-hex-digit digest of the normalized values.
std::string variantId(const Fields& request_headers, const std::vector<std::string>& vary_fields);

}  // namespace tern::edge::http
