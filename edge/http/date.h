#pragma once
// HTTP-date (RFC 9110 section 5.6.7): parses IMF-fixdate and the two obsolete
// forms (RFC 850, asctime); formats IMF-fixdate. Times are milliseconds since
// the Unix epoch. Pure functions.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tern::edge::http {

std::optional<int64_t> parseHttpDate(std::string_view text);
std::string formatHttpDate(int64_t ms);

}  // namespace tern::edge::http
