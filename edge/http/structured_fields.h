#pragma once
// Structured Field Values (RFC 8941): a strict parser of Dictionaries, as
// RFC 9213 requires for CDN-Cache-Control (a value that does not parse is
// ignored as a whole). Follows the parsing algorithms of RFC 8941 section
// 4.2 exactly; no leniency. Pure functions.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace tern::edge::http::sf {

struct Token {
  std::string value;
  bool operator==(const Token&) const = default;
};
struct ByteSequence {
  std::string base64;  // as it appeared, not decoded
  bool operator==(const ByteSequence&) const = default;
};
// Integer, Decimal (as double), String, Token, Byte Sequence, Boolean.
using BareItem = std::variant<int64_t, double, std::string, Token, ByteSequence, bool>;
using Parameters = std::vector<std::pair<std::string, BareItem>>;

struct Item {
  BareItem value;
  Parameters params;
};
struct InnerList {
  std::vector<Item> items;
  Parameters params;
};
using Member = std::variant<Item, InnerList>;
// Members in order; a key given twice keeps its last value at its first
// place (RFC 8941 4.2.2).
using Dictionary = std::vector<std::pair<std::string, Member>>;

// nullopt when `value` is not a Dictionary (RFC 8941 4.2.2).
std::optional<Dictionary> parseDictionary(std::string_view value);

}  // namespace tern::edge::http::sf
