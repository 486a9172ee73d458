#include "coordinator/api/access.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <set>

namespace tern::coordinator {
namespace {

bool startsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  return true;
}

bool isHexDigest(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// "name" or "name*" (a prefix).
bool matchPattern(std::string_view pattern, std::string_view value) {
  if (!pattern.empty() && pattern.back() == '*')
    return value.starts_with(pattern.substr(0, pattern.size() - 1));
  return pattern == value;
}

// The host of a normalized selector value, without its port.
std::string_view hostOf(const storage::PurgeSelector& sel) {
  std::string_view v = sel.value;
  if (sel.kind != storage::SelectorKind::kHost) v = v.substr(0, v.find('/'));
  if (!v.empty() && v.front() == '[') return v.substr(0, v.find(']') + 1);  // IPv6 literal
  return v.substr(0, v.find(':'));
}

// "a.example.com" matches itself; "*.example.com" every name under it.
bool hostAllowed(const std::vector<std::string>& hosts, std::string_view host) {
  for (const auto& h : hosts) {
    if (h.starts_with("*.")) {
      std::string_view suffix = std::string_view(h).substr(1);  // ".example.com"
      if (host.size() > suffix.size() && host.ends_with(suffix)) return true;
    } else if (h == host) {
      return true;
    }
  }
  return false;
}

Result<std::vector<std::string>> stringList(const YAML::Node& node, const std::string& where) {
  std::vector<std::string> out;
  if (!node) return out;
  if (node.IsScalar()) {
    out.push_back(node.as<std::string>());
    return out;
  }
  if (!node.IsSequence()) return Status::invalidArgument(where + ": expected a list");
  for (const auto& item : node) {
    if (!item.IsScalar()) return Status::invalidArgument(where + ": expected a list of strings");
    out.push_back(item.as<std::string>());
  }
  return out;
}

Status parseTokens(std::string_view text, std::unordered_map<std::string, Principal>* out) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return Status::invalidArgument(std::string("tokens file: ") + e.what());
  }
  if (!root || root.IsNull()) return Status::ok();
  if (!root.IsMap() || !root["tokens"] || !root["tokens"].IsSequence())
    return Status::invalidArgument("tokens file: expected a list under 'tokens'");
  std::set<std::string> names;
  size_t index = 0;
  for (const auto& entry : root["tokens"]) {
    ++index;
    std::string where = "tokens file, entry " + std::to_string(index);
    try {
      if (!entry.IsMap()) return Status::invalidArgument(where + ": expected a mapping");
      for (const auto& kv : entry) {
        static const std::set<std::string> kKeys = {"name",  "sha256",     "token",   "scopes",
                                                    "hosts", "tag_prefix", "edge_ids"};
        if (!kKeys.contains(kv.first.as<std::string>()))
          return Status::invalidArgument(where + ": unknown key '" + kv.first.as<std::string>() +
                                         "'");
      }
      Principal p;
      p.name = entry["name"] ? entry["name"].as<std::string>() : "";
      if (p.name.empty()) return Status::invalidArgument(where + ": 'name' is required");
      where += " (" + p.name + ")";
      if (!names.insert(p.name).second)
        return Status::invalidArgument(where + ": a second token with this name");
      std::string digest;
      if (entry["sha256"] && entry["token"])
        return Status::invalidArgument(where + ": give 'sha256' or 'token', not both");
      if (entry["sha256"]) {
        digest = entry["sha256"].as<std::string>();
        std::transform(digest.begin(), digest.end(), digest.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (!isHexDigest(digest))
          return Status::invalidArgument(where + ": 'sha256' must be 64 hex digits");
      } else if (entry["token"]) {
        std::string token = entry["token"].as<std::string>();
        if (token.size() < 16)
          return Status::invalidArgument(where + ": a token must have at least 16 characters");
        digest = sha256Hex(token);
      } else {
        return Status::invalidArgument(where + ": 'sha256' (or 'token') is required");
      }
      TERN_ASSIGN_OR_RETURN(auto scopes, stringList(entry["scopes"], where + ": scopes"));
      if (scopes.empty()) return Status::invalidArgument(where + ": 'scopes' is required");
      for (const auto& s : scopes) {
        if (s == "purge") {
          p.scopes |= kScopePurge;
        } else if (s == "read") {
          p.scopes |= kScopeRead;
        } else if (s == "edge") {
          p.scopes |= kScopeEdge;
        } else if (s == "replica") {
          p.scopes |= kScopeReplica;
        } else {
          return Status::invalidArgument(where + ": unknown scope '" + s +
                                         "' (purge, read, edge, replica)");
        }
      }
      TERN_ASSIGN_OR_RETURN(p.hosts, stringList(entry["hosts"], where + ": hosts"));
      for (auto& h : p.hosts) {
        std::transform(h.begin(), h.end(), h.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (h.empty() || h == "*" || h == "*." || h.find_first_of("/ ") != std::string::npos ||
            h.find('*', h.starts_with("*.") ? 1 : 0) != std::string::npos)
          return Status::invalidArgument(where + ": host '" + h +
                                         "' (a name, or *.name for every name under it)");
      }
      if (entry["tag_prefix"]) {
        p.tag_prefix = entry["tag_prefix"].as<std::string>();
        if (p.hosts.empty())
          return Status::invalidArgument(where + ": 'tag_prefix' restricts a token with 'hosts'");
      }
      if (!p.hosts.empty() && !p.has(kScopePurge))
        return Status::invalidArgument(where + ": 'hosts' restricts the purge scope");
      TERN_ASSIGN_OR_RETURN(p.edge_ids, stringList(entry["edge_ids"], where + ": edge_ids"));
      if (!p.edge_ids.empty() && !p.has(kScopeEdge))
        return Status::invalidArgument(where + ": 'edge_ids' restricts the edge scope");
      if (!out->emplace(digest, std::move(p)).second)
        return Status::invalidArgument(where + ": the same token as an earlier entry");
    } catch (const YAML::Exception& e) {
      return Status::invalidArgument(where + ": " + e.what());
    }
  }
  return Status::ok();
}

Result<std::string> readWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::invalidArgument("cannot read " + path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

bool Principal::mayJoinAs(std::string_view edge_id) const {
  if (!has(kScopeEdge)) return false;
  if (edge_ids.empty()) return true;
  return std::any_of(edge_ids.begin(), edge_ids.end(),
                     [&](const std::string& p) { return matchPattern(p, edge_id); });
}

std::string sha256Hex(std::string_view data) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(2 * SHA256_DIGEST_LENGTH, '0');
  for (size_t i = 0; i < SHA256_DIGEST_LENGTH; ++i) {
    out[2 * i] = kHex[md[i] >> 4];
    out[2 * i + 1] = kHex[md[i] & 15];
  }
  return out;
}

Result<std::shared_ptr<const AccessPolicy>> AccessPolicy::build(
    const std::vector<std::string>& full_tokens, std::string_view tokens_yaml) {
  auto policy = std::make_shared<AccessPolicy>();
  TERN_RETURN_IF_ERROR(parseTokens(tokens_yaml, &policy->by_digest_));
  for (const auto& t : full_tokens) {
    if (t.empty()) continue;
    if (policy->first_full_token_.empty()) policy->first_full_token_ = t;
    std::string digest = sha256Hex(t);
    Principal p;
    p.name = "token:" + digest.substr(0, 8);
    p.scopes = kScopeAll;
    policy->by_digest_.emplace(std::move(digest), std::move(p));  // a named entry wins
  }
  return std::shared_ptr<const AccessPolicy>(std::move(policy));
}

Result<Principal> AccessPolicy::authenticate(std::string_view authorization) const {
  if (open()) return Principal{"anonymous", kScopeAll, {}, {}, {}};
  if (!startsWithNoCase(authorization, "bearer "))
    return Status::unauthenticated("missing or wrong bearer token");
  std::string_view token = authorization.substr(7);
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  if (token.empty()) return Status::unauthenticated("missing or wrong bearer token");
  // The digest is looked up, not the token: how long the look-up takes says
  // nothing about a token's bytes.
  auto it = by_digest_.find(sha256Hex(token));
  if (it == by_digest_.end()) return Status::unauthenticated("missing or wrong bearer token");
  return it->second;
}

Status checkPurge(const Principal& who, storage::PurgeMode mode,
                  const std::vector<storage::PurgeSelector>& selectors) {
  using storage::SelectorKind;
  if (!who.has(kScopePurge)) {
    if (who.has(kScopeEdge)) {
      // Cache-Group-Invalidation from an origin, through an edge.
      const bool tags_only = std::all_of(selectors.begin(), selectors.end(), [](const auto& s) {
        return s.kind == SelectorKind::kTag;
      });
      if (mode == storage::PurgeMode::kSoft && tags_only) return Status::ok();
      return Status::permissionDenied("credential '" + who.name +
                                      "' is an edge's: it may only soft-purge tags");
    }
    return Status::permissionDenied("credential '" + who.name + "' may not purge");
  }
  if (who.hosts.empty()) return Status::ok();
  for (const auto& sel : selectors) {
    switch (sel.kind) {
      case SelectorKind::kAll:
        return Status::permissionDenied("credential '" + who.name +
                                        "' may purge only its hosts, not everything");
      case SelectorKind::kTag:
        if (!who.tag_prefix)
          return Status::permissionDenied("credential '" + who.name + "' may not purge tags");
        if (!sel.value.starts_with(*who.tag_prefix))
          return Status::permissionDenied("credential '" + who.name + "' may not purge tag '" +
                                          sel.value + "' (only tags starting with '" +
                                          *who.tag_prefix + "')");
        break;
      case SelectorKind::kUrl:
      case SelectorKind::kPrefix:
      case SelectorKind::kHost: {
        std::string_view host = hostOf(sel);
        if (!hostAllowed(who.hosts, host))
          return Status::permissionDenied(
              "credential '" + who.name + "' may not purge host '" + std::string(host) + "' (" +
              std::string(storage::selectorKindName(sel.kind)) + " " + sel.value + ")");
        break;
      }
    }
  }
  return Status::ok();
}

Result<std::shared_ptr<const AccessPolicy>> loadAccessPolicy(const AccessSources& sources) {
  std::vector<std::string> tokens = sources.tokens;
  if (!sources.token_file.empty()) {
    TERN_ASSIGN_OR_RETURN(std::string text, readWhole(sources.token_file));
    size_t pos = 0;
    while (pos < text.size()) {
      size_t nl = text.find('\n', pos);
      std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
      if (!line.empty() && line[0] != '#') tokens.push_back(line);
      if (nl == std::string::npos) break;
      pos = nl + 1;
    }
  }
  std::string yaml;
  if (!sources.tokens_file.empty()) {
    TERN_ASSIGN_OR_RETURN(yaml, readWhole(sources.tokens_file));
    // Nothing at all is a file caught half-written, not "no tokens" (say
    // that with "tokens: []").
    if (yaml.find_first_not_of(" \t\r\n") == std::string::npos)
      return Status::invalidArgument(sources.tokens_file + ": the tokens file is empty");
  }
  auto policy = AccessPolicy::build(tokens, yaml);
  if (!policy.ok() && !sources.tokens_file.empty())
    return Status::invalidArgument(sources.tokens_file + ": " + policy.status().message());
  // Files that name no credential would open the APIs to anyone: an empty
  // file (or one caught half-written) is an error, never "open".
  if (policy.ok() && (*policy)->open() &&
      (!sources.token_file.empty() || !sources.tokens_file.empty()))
    return Status::invalidArgument(
        "no credential in " +
        (sources.tokens_file.empty() ? sources.token_file : sources.tokens_file) +
        ": refusing to leave the APIs open");
  return policy;
}

}  // namespace tern::coordinator
