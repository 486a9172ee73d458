#include "edge/http/date.h"

#include <ctime>
#include <string>

namespace tern::edge::http {

std::optional<int64_t> parseHttpDate(std::string_view text) {
  // strptime needs a terminated string; dates are short.
  if (text.empty() || text.size() > 64) return std::nullopt;
  std::string s(text);
  static constexpr const char* kFormats[] = {
      "%a, %d %b %Y %H:%M:%S GMT",  // IMF-fixdate
      "%A, %d-%b-%y %H:%M:%S GMT",  // RFC 850
      "%a %b %e %H:%M:%S %Y",       // asctime
  };
  for (const char* fmt : kFormats) {
    std::tm tm{};
    const char* end = strptime(s.c_str(), fmt, &tm);
    if (end == nullptr || *end != '\0') continue;
    time_t t = timegm(&tm);
    if (t == static_cast<time_t>(-1)) return std::nullopt;
    return static_cast<int64_t>(t) * 1000;
  }
  return std::nullopt;
}

std::string formatHttpDate(int64_t ms) {
  time_t t = static_cast<time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  size_t n = std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return std::string(buf, n);
}

}  // namespace tern::edge::http
