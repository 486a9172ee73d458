#include "edge/http/conditional.h"

#include "edge/http/date.h"

namespace tern::edge::http {
namespace {

std::string_view opaque(std::string_view tag) {
  tag = trim(tag);
  if (tag.starts_with("W/")) tag.remove_prefix(2);
  return tag;
}

}  // namespace

bool weakEtagMatch(std::string_view a, std::string_view b) {
  auto x = opaque(a), y = opaque(b);
  return !x.empty() && x.front() == '"' && x == y;
}

bool notModified(std::string_view method, const Fields& req, const Fields& stored) {
  if (method != "GET" && method != "HEAD") return false;
  if (hasField(req, "if-none-match")) {
    auto etag = findField(stored, "etag");
    const std::string inm = combinedField(req, "if-none-match");
    for (auto candidate : splitList(inm)) {
      if (candidate == "*") return true;
      if (etag && weakEtagMatch(candidate, *etag)) return true;
    }
    return false;  // If-Modified-Since is ignored when If-None-Match is present
  }
  auto ims = findField(req, "if-modified-since");
  if (!ims) return false;
  auto since = parseHttpDate(trim(*ims));
  auto lm = findField(stored, "last-modified");
  if (!since || !lm) return false;
  auto modified = parseHttpDate(trim(*lm));
  return modified && *modified <= *since;
}

Fields headersFor304(const Fields& stored) {
  static constexpr std::string_view kKeep[] = {"cache-control", "content-location", "date",
                                               "etag",          "expires",          "vary",
                                               "last-modified", "cdn-cache-control"};
  Fields out;
  for (const auto& f : stored) {
    for (auto k : kKeep) {
      if (iequals(f.name, k)) {
        out.push_back(f);
        break;
      }
    }
  }
  return out;
}

void mergeNotModified(Fields& stored, const Fields& nm) {
  static constexpr std::string_view kKeepStored[] = {"content-length", "content-encoding",
                                                     "transfer-encoding", "content-range"};
  for (const auto& f : nm) {
    bool keep = isHopByHop(f.name);
    for (auto k : kKeepStored) keep = keep || iequals(f.name, k);
    if (keep) continue;
    removeField(stored, f.name);
  }
  for (const auto& f : nm) {
    bool keep = isHopByHop(f.name);
    for (auto k : kKeepStored) keep = keep || iequals(f.name, k);
    if (!keep) stored.push_back(f);
  }
}

Fields validatorsFor(const Fields& stored) {
  Fields out;
  if (auto etag = findField(stored, "etag")) {
    out.push_back({"If-None-Match", std::string(*etag)});
  } else if (auto lm = findField(stored, "last-modified")) {
    out.push_back({"If-Modified-Since", std::string(*lm)});
  }
  return out;
}

}  // namespace tern::edge::http
