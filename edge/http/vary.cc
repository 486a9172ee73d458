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
  if (qualityOf(value, "br") > 0) return "br";
  if (qualityOf(value, "gzip") > 0) return "gzip";
  return "identity";
}

std::string variantId(const Fields& req, const std::vector<std::string>& vary_fields) {
  if (vary_fields.empty()) return {};
  std::string material;
  for (const auto& name : vary_fields) {
    material.append(name).push_back('=');
    if (name == "accept-encoding") {
      material.append(normalizeAcceptEncoding(combinedField(req, name)));
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
