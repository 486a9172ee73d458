#include "edge/http/date.h"

#include <ctime>
#include <string>

namespace tern::edge::http {

namespace {

// IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT": the form every current
// sender uses, parsed without strptime (it is on the hit path).
std::optional<int64_t> parseImfFixdate(std::string_view s) {
  if (s.size() != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
      s[19] != ':' || s[22] != ':' || s.substr(25) != " GMT") {
    return std::nullopt;
  }
  auto num = [&](size_t pos, size_t len, int* out) {
    int v = 0;
    for (size_t i = pos; i < pos + len; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
  };
  static constexpr std::string_view kMonths = "JanFebMarAprMayJunJulAugSepOctNovDec";
  auto m = kMonths.find(s.substr(8, 3));
  if (m == std::string_view::npos || m % 3 != 0) return std::nullopt;
  int day, year, hh, mm, ss;
  if (!num(5, 2, &day) || !num(12, 4, &year) || !num(17, 2, &hh) || !num(20, 2, &mm) ||
      !num(23, 2, &ss)) {
    return std::nullopt;
  }
  if (day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60) return std::nullopt;
  // Days from civil (H. Hinnant's algorithm).
  int month = static_cast<int>(m / 3) + 1;
  int y = year - (month <= 2);
  int era = (y >= 0 ? y : y - 399) / 400;
  int yoe = y - era * 400;
  int doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
  int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  int64_t days = static_cast<int64_t>(era) * 146097 + doe - 719468;
  return ((days * 86400) + hh * 3600 + mm * 60 + ss) * 1000;
}

}  // namespace

std::optional<int64_t> parseHttpDate(std::string_view text) {
  if (auto fast = parseImfFixdate(text)) return fast;
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
