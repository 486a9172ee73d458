#include "edge/http/cache_control.h"

#include <algorithm>
#include <charconv>

#include "edge/http/structured_fields.h"

namespace tern::edge::http {
namespace {

// Parses delta-seconds; quoted values are accepted (RFC 9111 section 5.2:
// senders should not quote, recipients should accept).
std::optional<int64_t> parseDelta(std::string_view v) {
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  if (v.empty()) return std::nullopt;
  int64_t out = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return std::nullopt;
    if (out < kMaxDeltaSeconds) out = out * 10 + (c - '0');
  }
  return std::min(out, kMaxDeltaSeconds);
}

std::vector<std::string> parseFieldNames(std::string_view v) {
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  std::vector<std::string> out;
  for (auto item : splitList(v)) out.push_back(toLower(item));
  return out;
}

void setDelta(std::optional<int64_t>& slot, std::string_view arg, bool has_arg, bool& invalid) {
  auto d = has_arg ? parseDelta(arg) : std::nullopt;
  if (!d) {
    invalid = true;
    return;
  }
  if (slot && *slot != *d) invalid = true;  // conflicting duplicates
  if (!slot) slot = d;
}

}  // namespace

namespace {

// The value of a list field: the line itself when there is one (no copy),
// else all lines joined.
struct FieldValue {
  std::string joined;
  std::string_view view;
  operator std::string_view() const { return view; }  // NOLINT
};

FieldValue fieldValue(const Fields& fields, std::string_view name) {
  FieldValue v;
  size_t n = countField(fields, name);
  if (n == 1) {
    v.view = *findField(fields, name);
  } else if (n > 1) {
    v.joined = combinedField(fields, name);
    v.view = v.joined;
  }
  return v;
}

}  // namespace

CacheControl parseCacheControl(std::string_view value) {
  CacheControl cc;
  for (auto item : splitList(value)) {
    std::string_view name = item, arg;
    bool has_arg = false;
    if (auto eq = item.find('='); eq != std::string_view::npos) {
      name = trim(item.substr(0, eq));
      arg = trim(item.substr(eq + 1));
      has_arg = true;
    }
    cc.present = true;
    auto is = [&](std::string_view directive) { return iequals(name, directive); };
    if (is("max-age")) {
      setDelta(cc.max_age, arg, has_arg, cc.invalid);
    } else if (is("s-maxage")) {
      setDelta(cc.s_maxage, arg, has_arg, cc.invalid);
    } else if (is("min-fresh")) {
      bool ignored = false;
      setDelta(cc.min_fresh, arg, has_arg, ignored);
    } else if (is("max-stale")) {
      cc.max_stale = true;
      if (has_arg) cc.max_stale_limit = parseDelta(arg).value_or(0);
    } else if (is("stale-while-revalidate")) {
      bool ignored = false;
      setDelta(cc.stale_while_revalidate, arg, has_arg, ignored);
    } else if (is("stale-if-error")) {
      bool ignored = false;
      setDelta(cc.stale_if_error, arg, has_arg, ignored);
    } else if (is("no-store")) {
      cc.no_store = true;
    } else if (is("no-cache")) {
      if (has_arg) {
        auto f = parseFieldNames(arg);
        cc.no_cache_fields.insert(cc.no_cache_fields.end(), f.begin(), f.end());
        if (f.empty()) cc.no_cache = true;
      } else {
        cc.no_cache = true;
      }
    } else if (is("private")) {
      if (has_arg) {
        auto f = parseFieldNames(arg);
        cc.private_fields.insert(cc.private_fields.end(), f.begin(), f.end());
        if (f.empty()) cc.is_private = true;
      } else {
        cc.is_private = true;
      }
    } else if (is("public")) {
      cc.is_public = true;
    } else if (is("must-revalidate")) {
      cc.must_revalidate = true;
    } else if (is("proxy-revalidate")) {
      cc.proxy_revalidate = true;
    } else if (is("only-if-cached")) {
      cc.only_if_cached = true;
    } else if (is("immutable")) {
      cc.immutable = true;
    } else if (is("no-transform")) {
      cc.no_transform = true;
    } else if (is("must-understand")) {
      cc.must_understand = true;
    }
    // Unknown extension directives are ignored (section 5.2.3).
  }
  return cc;
}

CacheControl parseTargetedCacheControl(std::string_view value) {
  CacheControl cc;
  auto dict = sf::parseDictionary(value);
  if (!dict) {
    cc.invalid = true;
    return cc;
  }
  for (const auto& entry : *dict) {
    const std::string& key = entry.first;
    const sf::Member& member = entry.second;  // (not a structured binding: lambdas use it)
    cc.present = true;
    const sf::Item* item = std::get_if<sf::Item>(&member);
    // A directive whose value has the wrong type is ignored (RFC 9213 2.1).
    auto delta = [&](std::optional<int64_t>& slot) {
      const int64_t* v = item ? std::get_if<int64_t>(&item->value) : nullptr;
      if (v && *v >= 0) slot = std::min(*v, kMaxDeltaSeconds);
    };
    const bool* b = item ? std::get_if<bool>(&item->value) : nullptr;
    const bool flag = b && *b;
    // no-cache / private: true, or the field names as a String or a list.
    auto names = [&](bool& unqualified, std::vector<std::string>& fields) {
      if (flag) unqualified = true;
      if (const auto* str = item ? std::get_if<std::string>(&item->value) : nullptr) {
        for (auto f : parseFieldNames(*str)) fields.push_back(f);
      } else if (const auto* list = std::get_if<sf::InnerList>(&member)) {
        for (const auto& i : list->items) {
          if (const auto* t = std::get_if<sf::Token>(&i.value)) fields.push_back(toLower(t->value));
          if (const auto* str2 = std::get_if<std::string>(&i.value))
            fields.push_back(toLower(*str2));
        }
      }
    };
    if (key == "max-age") {
      delta(cc.max_age);
    } else if (key == "s-maxage") {
      delta(cc.s_maxage);
    } else if (key == "stale-while-revalidate") {
      delta(cc.stale_while_revalidate);
    } else if (key == "stale-if-error") {
      delta(cc.stale_if_error);
    } else if (key == "no-store") {
      cc.no_store = flag;
    } else if (key == "no-cache") {
      names(cc.no_cache, cc.no_cache_fields);
    } else if (key == "private") {
      names(cc.is_private, cc.private_fields);
    } else if (key == "public") {
      cc.is_public = flag;
    } else if (key == "must-revalidate") {
      cc.must_revalidate = flag;
    } else if (key == "proxy-revalidate") {
      cc.proxy_revalidate = flag;
    } else if (key == "immutable") {
      cc.immutable = flag;
    } else if (key == "no-transform") {
      cc.no_transform = flag;
    } else if (key == "must-understand") {
      cc.must_understand = flag;
    }
  }
  return cc;
}

CacheControl effectiveResponseCacheControl(const Fields& response_headers) {
  if (hasField(response_headers, "cdn-cache-control")) {
    CacheControl cdn =
        parseTargetedCacheControl(combinedField(response_headers, "cdn-cache-control"));
    // RFC 9213 section 2.1: a targeted field that is not a valid Dictionary
    // is ignored as a whole, and then does not override Cache-Control.
    if (cdn.present && !cdn.invalid) return cdn;
  }
  return parseCacheControl(fieldValue(response_headers, "cache-control"));
}

CacheControl requestCacheControl(const Fields& request_headers) {
  CacheControl cc = parseCacheControl(fieldValue(request_headers, "cache-control"));
  if (!cc.present) {
    const std::string pragma = combinedField(request_headers, "pragma");
    for (auto item : splitList(pragma)) {
      if (iequals(item, "no-cache")) cc.no_cache = true;
    }
  }
  return cc;
}

}  // namespace tern::edge::http
