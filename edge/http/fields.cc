#include "edge/http/fields.h"

#include <algorithm>

namespace tern::edge::http {

namespace {

// ASCII case folding: field names and tokens are ASCII (RFC 9110 5.1);
// no locale lookups on the hit path.
inline char lowerAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lowerAscii(a[i]) != lowerAscii(b[i])) return false;
  }
  return true;
}

std::string toLower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = lowerAscii(c);
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::optional<std::string_view> findField(const Fields& fields, std::string_view name) {
  for (const auto& f : fields) {
    if (iequals(f.name, name)) return std::string_view(f.value);
  }
  return std::nullopt;
}

std::string combinedField(const Fields& fields, std::string_view name) {
  std::string out;
  for (const auto& f : fields) {
    if (!iequals(f.name, name)) continue;
    if (!out.empty()) out.append(", ");
    out.append(f.value);
  }
  return out;
}

bool hasField(const Fields& fields, std::string_view name) {
  return findField(fields, name).has_value();
}

size_t countField(const Fields& fields, std::string_view name) {
  return static_cast<size_t>(std::count_if(fields.begin(), fields.end(),
                                           [&](const Field& f) { return iequals(f.name, name); }));
}

void removeField(Fields& fields, std::string_view name) {
  std::erase_if(fields, [&](const Field& f) { return iequals(f.name, name); });
}

void setField(Fields& fields, std::string_view name, std::string_view value) {
  removeField(fields, name);
  fields.push_back({std::string(name), std::string(value)});
}

std::vector<std::string_view> splitList(std::string_view value) {
  std::vector<std::string_view> out;
  size_t start = 0;
  bool quoted = false;
  for (size_t i = 0; i <= value.size(); ++i) {
    if (i < value.size()) {
      char c = value[i];
      if (quoted && c == '\\') {
        ++i;
        continue;
      }
      if (c == '"') quoted = !quoted;
      if (c != ',' || quoted) continue;
    }
    auto item = trim(value.substr(start, i - start));
    if (!item.empty()) out.push_back(item);
    start = i + 1;
  }
  return out;
}

bool isHopByHop(std::string_view name) {
  static constexpr std::string_view kHop[] = {
      "connection", "keep-alive",         "proxy-connection",    "te",     "transfer-encoding",
      "upgrade",    "proxy-authenticate", "proxy-authorization", "trailer"};
  for (auto h : kHop) {
    if (iequals(h, name)) return true;
  }
  return false;
}

void stripHopByHop(Fields& fields) {
  std::vector<std::string_view> named;
  std::string connection;
  for (const auto& f : fields) {
    if (iequals(f.name, "connection")) {
      if (!connection.empty()) connection.append(",");
      connection.append(f.value);
    }
  }
  if (!connection.empty()) named = splitList(connection);
  std::erase_if(fields, [&](const Field& f) {
    if (isHopByHop(f.name)) return true;
    for (auto n : named) {
      if (iequals(n, f.name)) return true;
    }
    return false;
  });
}

}  // namespace tern::edge::http
