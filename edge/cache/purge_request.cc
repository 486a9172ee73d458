#include "edge/cache/purge_request.h"

#include <algorithm>

namespace tern::edge::cache {

bool sameSecret(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

namespace {

bool headerIs(const http::Fields& headers, std::string_view name, std::string_view value) {
  auto v = http::findField(headers, name);
  return v && http::trim(*v) == value;
}

}  // namespace

Result<PurgeForward> purgeRequest(const http::Fields& headers, const storage::CacheKey& url,
                                  std::string_view client_ip, std::string_view required_token) {
  auto auth = http::findField(headers, "authorization");
  const std::string_view credential = auth ? http::trim(*auth) : std::string_view();
  // A token is visible ASCII only (RFC 6750's b64token is narrower).
  const bool bearer =
      credential.size() > 7 &&
      (credential.substr(0, 7) == "Bearer " || credential.substr(0, 7) == "bearer ") &&
      std::all_of(credential.begin() + 7, credential.end(),
                  [](char c) { return c >= 0x21 && c <= 0x7e; });
  if (!bearer ||
      (!required_token.empty() && !sameSecret(credential, "Bearer " + std::string(required_token))))
    return Status::unauthenticated("PURGE needs the caller's bearer token");
  PurgeForward f;
  const std::string keys = http::combinedField(headers, "surrogate-key");
  for (size_t i = 0; i < keys.size();) {
    while (i < keys.size() && (keys[i] == ' ' || keys[i] == '\t')) ++i;
    size_t j = i;
    while (j < keys.size() && keys[j] != ' ' && keys[j] != '\t') ++j;
    if (j > i) f.selectors.push_back({storage::SelectorKind::kTag, keys.substr(i, j - i)});
    i = j;
  }
  if (f.selectors.empty()) {
    f.selectors.push_back({headerIs(headers, "tern-purge-prefix", "1")
                               ? storage::SelectorKind::kPrefix
                               : storage::SelectorKind::kUrl,
                           url.urlId()});
  }
  if (headerIs(headers, "tern-purge-mode", "soft") || headerIs(headers, "fastly-soft-purge", "1"))
    f.mode = storage::PurgeMode::kSoft;
  f.wait_all = headerIs(headers, "tern-purge-wait", "all");
  f.authorization = std::string(credential);
  f.client_ip = std::string(client_ip);
  return f;
}

}  // namespace tern::edge::cache
