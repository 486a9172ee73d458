#include "edge/http/range.h"

#include <charconv>

#include "edge/http/conditional.h"

namespace tern::edge::http {
namespace {

std::optional<uint64_t> number(std::string_view s) {
  if (s.empty()) return std::nullopt;
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

RangeDecision decideRange(std::string_view method, const Fields& req, const Fields& stored,
                          uint64_t length) {
  RangeDecision d;
  if (method != "GET") return d;
  auto range = findField(req, "range");
  if (!range || countField(req, "range") != 1) return d;
  // If-Range: serve the range only if the validator still matches (strong
  // comparison for ETags, section 13.1.5).
  if (auto if_range = findField(req, "if-range")) {
    auto v = trim(*if_range);
    if (v.starts_with("\"") || v.starts_with("W/")) {
      auto etag = findField(stored, "etag");
      if (!etag || v.starts_with("W/") || trim(*etag) != v) return d;
    } else {
      auto lm = findField(stored, "last-modified");
      if (!lm || trim(*lm) != v) return d;
    }
  }
  std::string_view spec = trim(*range);
  if (!spec.starts_with("bytes=")) return d;  // unknown unit: ignore Range
  spec.remove_prefix(6);
  if (spec.find(',') != std::string_view::npos) return d;  // several ranges: full
  auto dash = spec.find('-');
  if (dash == std::string_view::npos) return d;
  auto first_s = trim(spec.substr(0, dash)), last_s = trim(spec.substr(dash + 1));
  ByteRange r;
  if (first_s.empty()) {  // suffix range: the last N bytes
    auto n = number(last_s);
    if (!n) return d;
    if (*n == 0 || length == 0) {
      d.outcome = RangeOutcome::kUnsatisfiable;
    } else {
      r.first = *n >= length ? 0 : length - *n;
      r.last = length - 1;
      d.outcome = RangeOutcome::kPartial;
    }
  } else {
    auto first = number(first_s);
    if (!first) return d;
    std::optional<uint64_t> last =
        last_s.empty() ? std::optional<uint64_t>(UINT64_MAX) : number(last_s);
    if (!last || *last < *first) return d;  // invalid: ignore
    if (*first >= length) {
      d.outcome = RangeOutcome::kUnsatisfiable;
    } else {
      r.first = *first;
      r.last = std::min(*last, length - 1);
      d.outcome = RangeOutcome::kPartial;
    }
  }
  if (d.outcome == RangeOutcome::kUnsatisfiable) {
    d.content_range = "bytes */" + std::to_string(length);
  } else {
    d.range = r;
    d.content_range = "bytes " + std::to_string(r.first) + "-" + std::to_string(r.last) + "/" +
                      std::to_string(length);
  }
  return d;
}

}  // namespace tern::edge::http
