#include "edge/http/vary.h"

#include <cstdio>

#include "common/hash.h"

namespace tern::edge::http {
namespace {

// q-value of a coding in an Accept-Encoding list (RFC 9110 section 12.5.3).
double qualityOf(std::string_view list, std::string_view coding) {
  double star = -1, exact = -1;
  for (auto item : splitList(list)) {
    std::string_view name = item;
    double q = 1.0;
    if (auto semi = item.find(';'); semi != std::string_view::npos) {
      name = trim(item.substr(0, semi));
      auto params = item.substr(semi + 1);
      if (auto qpos = params.find("q="); qpos != std::string_view::npos) {
        q = std::atof(std::string(trim(params.substr(qpos + 2))).c_str());
      }
    }
    if (iequals(name, coding)) exact = q;
    if (name == "*") star = q;
  }
  return exact >= 0 ? exact : star;
}

std::string collapseSpaces(std::string_view v) {
  std::string out;
  bool space = false;
  for (char c : trim(v)) {
    if (c == ' ' || c == '\t') {
      space = true;
      continue;
    }
    if (space && !out.empty()) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

}  // namespace

std::optional<std::vector<std::string>> varyFields(const Fields& h) {
  std::vector<std::string> out;
  const std::string vary = combinedField(h, "vary");
  for (auto v : splitList(vary)) {
    if (v == "*") return std::nullopt;
    std::string name = toLower(v);
    bool dup = false;
    for (const auto& o : out) dup = dup || o == name;
    if (!dup) out.push_back(std::move(name));
  }
  return out;
}

std::string normalizeAcceptEncoding(std::string_view value) {
  // The set, not a single choice: an origin may answer "gzip, br" with gzip,
  // which a client that accepts only br must never get.
  std::string out;
  for (const char* coding : {"br", "deflate", "gzip", "zstd"}) {
    if (qualityOf(value, coding) > 0) {
      if (!out.empty()) out.push_back(',');
      out.append(coding);
    }
  }
  return out.empty() ? "identity" : out;
}

bool acceptsCoding(std::string_view accept_encoding, std::string_view content_coding) {
  const std::string_view c = trim(content_coding);
  if (c.empty() || iequals(c, "identity")) return true;
  return qualityOf(accept_encoding, c) > 0;
}

std::string variantId(const Fields& req, const std::vector<std::string>& vary_fields) {
  if (vary_fields.empty()) return {};
  std::string material;
  for (const auto& name : vary_fields) {
    material.append(name).push_back('=');
    if (name == "accept-encoding") {
      material.append(normalizeAcceptEncoding(combinedField(req, name)));
    } else if (hasField(req, name) &&
               (name == "accept" || name == "accept-language" || name == "accept-charset")) {
      // Lists: items trimmed, one comma between them; language tags and
      // charsets are case-insensitive (RFC 9110 12.5.4, 12.5.2).
      const std::string value = combinedField(req, name);
      bool first = true;
      for (auto item : splitList(value)) {
        if (!first) material.push_back(',');
        first = false;
        std::string v = collapseSpaces(item);
        std::erase(v, ' ');  // "en; q=0.5" and "en;q=0.5"
        material.append(name == "accept" ? v : toLower(v));
      }
    } else if (hasField(req, name)) {
      material.append(collapseSpaces(combinedField(req, name)));
    } else {
      material.push_back('\x01');  // absent differs from empty
    }
    material.push_back('\n');
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash64(material)));
  return hex;
}

}  // namespace tern::edge::http
