#pragma once
// Conditional requests (RFC 9110 section 13) answered from a stored response,
// and the header merge of a 304 from the origin (RFC 9111 section 4.3.4).
// Pure functions.

#include <string_view>

#include "edge/http/fields.h"

namespace tern::edge::http {

// Weak comparison of two entity-tags (section 8.8.3.2): W/"x" equals "x".
bool weakEtagMatch(std::string_view a, std::string_view b);

// True when a client's conditional GET/HEAD can be answered 304 Not Modified
// from the stored response: If-None-Match (weak comparison, "*") takes
// precedence over If-Modified-Since (section 13.2.2).
bool notModified(std::string_view method, const Fields& request_headers,
                 const Fields& stored_headers);

// The fields of a stored response that a 304 repeats (section 15.4.5).
Fields headersFor304(const Fields& stored_headers);

// Merges the header fields of a 304 response into the stored ones: fields in
// the 304 replace stored fields of the same name, except Content-Length and
// the framing fields (section 4.3.4 and 3.2).
void mergeNotModified(Fields& stored_headers, const Fields& not_modified_headers);

// The request fields to revalidate a stored response: If-None-Match with
// its ETag, else If-Modified-Since with its Last-Modified (section 4.3.1).
Fields validatorsFor(const Fields& stored_headers);

}  // namespace tern::edge::http
