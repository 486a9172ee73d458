#pragma once
// Vary (RFC 9111 section 4.1): the request fields that select a variant, and
// the variant id computed from a request. Accept-Encoding is normalized to
// the coding the cache would choose (br, gzip or identity) so that the many
// spellings of browsers share variants. Pure functions.

#include <optional>
#include <string>
#include <vector>

#include "edge/http/fields.h"

namespace tern::edge::http {

// Lower-cased field names listed by the response's Vary; nullopt for "*".
std::optional<std::vector<std::string>> varyFields(const Fields& response_headers);

// Normalized Accept-Encoding: "br", "gzip" or "identity".
std::string normalizeAcceptEncoding(std::string_view value);

// The variant id of a request for the given Vary fields: empty when there
// are none; else a stable 16-hex-digit digest of the normalized values.
std::string variantId(const Fields& request_headers, const std::vector<std::string>& vary_fields);

}  // namespace tern::edge::http
