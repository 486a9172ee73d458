#pragma once
// Header fields as the HTTP semantics layer sees them: an ordered list of
// name/value pairs with case-insensitive lookup (RFC 9110 section 5).
// Thread-safety: plain values and pure functions.

#include <concepts>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/header_field.h"

namespace tern::edge::http {

using Field = HeaderField;
using Fields = HeaderFields;
using FieldsRefill = HeaderFieldsRefill;

bool iequals(std::string_view a, std::string_view b);
std::string toLower(std::string_view s);
std::string_view trim(std::string_view s);
// True if `s` holds a CR or LF (a value that would split a message head).
// One pass; std::string::find_first_of("\r\n") calls memchr per character.
inline bool hasLineBreak(std::string_view s) {
  for (char c : s) {
    if (c == '\r' || c == '\n') return true;
  }
  return false;
}

// The first value of `name`, if present.
std::optional<std::string_view> findField(const Fields& fields, std::string_view name);
// All lines of `name` joined with ", " (RFC 9110 section 5.3); empty if absent.
std::string combinedField(const Fields& fields, std::string_view name);
bool hasField(const Fields& fields, std::string_view name);
size_t countField(const Fields& fields, std::string_view name);
void removeField(Fields& fields, std::string_view name);
void setField(Fields& fields, std::string_view name, std::string_view value);

// Splits a comma-separated list (RFC 9110 section 5.6.1), honouring quoted
// strings; empty elements are dropped and elements trimmed.
std::vector<std::string_view> splitList(std::string_view value);
// The views point into the argument: a temporary string would dangle.
template <typename T>
requires std::same_as<T, std::string> std::vector<std::string_view> splitList(T&& value)
= delete;

// Hop-by-hop fields (RFC 9110 section 7.6.1): Connection, the fields it
// names, Keep-Alive, Proxy-Connection, TE, Transfer-Encoding, Upgrade,
// Proxy-Authenticate, Proxy-Authorization, Trailer.
bool isHopByHop(std::string_view name);
// Removes hop-by-hop fields, including those named by Connection.
void stripHopByHop(Fields& fields);

}  // namespace tern::edge::http
