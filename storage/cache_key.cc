#include "storage/cache_key.h"

#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <optional>
#include <vector>

namespace tern::storage {
namespace {

namespace urls = boost::urls;

std::string toLower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool isDefaultPort(std::string_view scheme, std::string_view port) {
  return (scheme == "http" && port == "80") || (scheme == "https" && port == "443");
}

bool isUnreserved(unsigned char c) {
  return std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 3986 section 6.2.2.2: decode percent-encoded unreserved characters,
// upper-case the hex digits of the rest. Reserved characters such as "%2F"
// stay encoded: "/a%2Fb" and "/a/b" are different resources.
std::string normalizePercent(std::string_view in) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size()) {
      int hi = hexValue(in[i + 1]), lo = hexValue(in[i + 2]);
      if (hi >= 0 && lo >= 0) {
        auto c = static_cast<unsigned char>(hi * 16 + lo);
        if (isUnreserved(c)) {
          out.push_back(static_cast<char>(c));
        } else {
          out.push_back('%');
          out.push_back(kHex[hi]);
          out.push_back(kHex[lo]);
        }
        i += 2;
        continue;
      }
    }
    out.push_back(in[i]);
  }
  return out;
}

// RFC 3986 section 5.2.4 on an absolute path.
std::string removeDotSegments(std::string_view path) {
  std::vector<std::string_view> out;
  size_t pos = 1;  // path starts with '/'
  bool trailing_slash = false;
  while (pos <= path.size()) {
    size_t next = path.find('/', pos);
    if (next == std::string_view::npos) next = path.size();
    std::string_view seg = path.substr(pos, next - pos);
    trailing_slash = false;
    if (seg == ".") {
      trailing_slash = true;
    } else if (seg == "..") {
      if (!out.empty()) out.pop_back();
      trailing_slash = true;
    } else {
      out.push_back(seg);
    }
    pos = next + 1;
  }
  std::string result;
  for (auto seg : out) result.append("/").append(seg);
  if (trailing_slash || result.empty()) result.push_back('/');
  return result;
}

// Normalizes a parsed absolute URL into a CacheKey.
Result<CacheKey> fromParsed(urls::url u) {
  u.normalize_scheme();
  u.normalize_authority();
  CacheKey key;
  key.scheme = std::string(u.scheme());
  if (key.scheme != "http" && key.scheme != "https") {
    return Status::invalidArgument("unsupported scheme: " + key.scheme);
  }
  if (u.has_userinfo()) return Status::invalidArgument("userinfo is not allowed in a cache key");
  std::string host = toLower(std::string_view(u.encoded_host()));
  if (host.empty()) return Status::invalidArgument("missing host");
  // An empty port is no port (RFC 3986 6.2.3): "h:" is "h".
  if (u.has_port() && !u.port().empty() && !isDefaultPort(key.scheme, u.port())) {
    host += ':';
    host += std::string_view(u.port());
  }
  key.host = std::move(host);
  std::string path = normalizePercent(std::string_view(u.encoded_path()));
  key.path = path.empty() || path.front() != '/' ? "/" + path : path;
  key.path = removeDotSegments(key.path);
  key.has_query = u.has_query();
  if (key.has_query) key.query = std::string(std::string_view(u.encoded_query()));
  return key;
}

bool isPlainHostChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

// pchar (RFC 3986 section 3.3) without pct-encoded, plus '/': unreserved,
// sub-delims, ':' and '@'.
constexpr std::array<bool, 256> kPlainPathChars = [] {
  std::array<bool, 256> t{};
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (char c : std::string_view("-._~!$&'()*+,;=:@/")) t[static_cast<unsigned char>(c)] = true;
  return t;
}();

bool isPlainPathChar(char c) { return kPlainPathChars[static_cast<unsigned char>(c)]; }

// The common request, already in normal form: a lower-case host name with
// an optional numeric port, and an origin-form target made of characters
// that need no decoding (no '%'), with no dot segments and no fragment.
// Normalization would leave such a key unchanged, so it is built directly,
// without parsing the URL (the hot path of every cache hit). Anything else
// returns nullopt and takes the full parse.
std::optional<CacheKey> plainKey(std::string_view scheme, std::string_view authority,
                                 std::string_view target) {
  if (scheme != "http" && scheme != "https") return std::nullopt;
  size_t colon = authority.find(':');
  std::string_view host = authority.substr(0, colon);
  if (host.empty() || !std::all_of(host.begin(), host.end(), isPlainHostChar)) return std::nullopt;
  std::string_view port;
  if (colon != std::string_view::npos) {
    port = authority.substr(colon + 1);
    if (port.empty() || port.size() > 5 ||
        !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return std::nullopt;
    }
  }
  if (target.empty() || target.front() != '/') return std::nullopt;
  size_t qmark = target.find('?');
  std::string_view path = target.substr(0, qmark);
  std::string_view query = qmark == std::string_view::npos ? "" : target.substr(qmark + 1);
  if (!std::all_of(path.begin(), path.end(), isPlainPathChar)) return std::nullopt;
  // Query: pchar / "/" / "?" (RFC 3986 section 3.4).
  if (!std::all_of(query.begin(), query.end(),
                   [](char c) { return c == '?' || isPlainPathChar(c); })) {
    return std::nullopt;
  }
  // Dot segments ("." or "..") would be removed by normalization.
  for (size_t pos = 1; pos <= path.size();) {
    size_t next = std::min(path.find('/', pos), path.size());
    std::string_view seg = path.substr(pos, next - pos);
    if (seg == "." || seg == "..") return std::nullopt;
    pos = next + 1;
  }
  CacheKey key;
  key.scheme = std::string(scheme);
  key.host =
      port.empty() || isDefaultPort(scheme, port) ? std::string(host) : std::string(authority);
  key.path = std::string(path);
  key.has_query = qmark != std::string_view::npos;
  key.query = std::string(query);
  return key;
}

}  // namespace

Result<CacheKey> CacheKey::fromRequest(std::string_view scheme, std::string_view authority,
                                       std::string_view target) {
  if (auto plain = plainKey(scheme, authority, target)) return std::move(*plain);
  if (!target.empty() && target.front() != '/') {
    // absolute-form (RFC 9112 section 3.2.2): the target wins over Host.
    return fromUrl(target);
  }
  if (authority.empty()) return Status::invalidArgument("missing Host");
  if (authority.find_first_of("/?#@ \t") != std::string_view::npos) {
    return Status::invalidArgument("invalid Host");
  }
  std::string text;
  text.reserve(scheme.size() + 3 + authority.size() + target.size());
  text.append(scheme).append("://").append(authority).append(target.empty() ? "/" : target);
  auto parsed = urls::parse_uri(text);
  if (!parsed) return Status::invalidArgument("invalid request target");
  if (parsed->has_fragment()) return Status::invalidArgument("fragment in request target");
  return fromParsed(urls::url(*parsed));
}

Result<CacheKey> CacheKey::fromUrl(std::string_view url) {
  // A scheme (RFC 3986 3.1) only at the start: "example.com/a://b" is a
  // URL without one whose path holds "://".
  auto hasScheme = [](std::string_view u) {
    const size_t end = u.find("://");
    if (end == std::string_view::npos || end == 0) return false;
    if (!std::isalpha(static_cast<unsigned char>(u[0]))) return false;
    for (char c : u.substr(0, end))
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.')
        return false;
    return true;
  };
  std::string text;
  if (!hasScheme(url)) text = "http://";
  text.append(url);
  auto parsed = urls::parse_uri(text);
  if (!parsed) return Status::invalidArgument("invalid URL: " + std::string(url));
  urls::url u(*parsed);
  u.remove_fragment();
  return fromParsed(std::move(u));
}

std::string CacheKey::urlId() const {
  std::string out;
  out.reserve(host.size() + path.size() + query.size() + 1);
  out.append(host).append(path);
  if (has_query) out.append("?").append(query);
  return out;
}

std::string CacheKey::toString() const { return scheme + "://" + urlId(); }

Result<std::string> normalizeHost(std::string_view host, std::string_view scheme) {
  if (host.empty()) return Status::invalidArgument("empty host");
  auto key = CacheKey::fromRequest(scheme, host, "/");
  if (!key.ok()) return Status::invalidArgument("invalid host: " + std::string(host));
  return key->host;
}

}  // namespace tern::storage
