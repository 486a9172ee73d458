#include "edge/http/date.h"

#include <ctime>
#include <string>
#include <string_view>

namespace tern::edge::http {

namespace {

// RFC 9110 5.6.7, exactly: fixed positions, one space where the grammar has
// SP, two-digit fields, case-sensitive names. No lenient fallback: a value
// that is not one of the three forms is not a date (an invalid Expires then
// means "already expired", RFC 9111 5.3).

bool digits(std::string_view s, size_t pos, size_t len, int* out) {
  int v = 0;
  for (size_t i = pos; i < pos + len; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

int monthOf(std::string_view name) {
  static constexpr std::string_view kMonths = "JanFebMarAprMayJunJulAugSepOctNovDec";
  auto m = kMonths.find(name);
  return m == std::string_view::npos || m % 3 != 0 || name.size() != 3
             ? 0
             : static_cast<int>(m / 3) + 1;
}

bool isDayName(std::string_view d) {
  for (auto n : {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"})
    if (d == n) return true;
  return false;
}

bool isLongDayName(std::string_view d) {
  for (auto n : {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"})
    if (d == n) return true;
  return false;
}

// "HH:MM:SS" at pos.
bool timeOfDay(std::string_view s, size_t pos, int* hh, int* mm, int* ss) {
  return s[pos + 2] == ':' && s[pos + 5] == ':' && digits(s, pos, 2, hh) &&
         digits(s, pos + 3, 2, mm) && digits(s, pos + 6, 2, ss) && *hh <= 23 && *mm <= 59 &&
         *ss <= 60;
}

std::optional<int64_t> civil(int year, int month, int day, int hh, int mm, int ss) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (month < 1 || day < 1 || day > kDays[month - 1] + (month == 2 && leap)) return std::nullopt;
  // Days from civil (H. Hinnant's algorithm).
  int y = year - (month <= 2);
  int era = (y >= 0 ? y : y - 399) / 400;
  int yoe = y - era * 400;
  int doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
  int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  int64_t days = static_cast<int64_t>(era) * 146097 + doe - 719468;
  return ((days * 86400) + hh * 3600 + mm * 60 + ss) * 1000;
}

// IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" (the form every current
// sender uses; on the hit path).
std::optional<int64_t> parseImfFixdate(std::string_view s) {
  if (s.size() != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
      s.substr(25) != " GMT" || !isDayName(s.substr(0, 3)))
    return std::nullopt;
  int day, year, hh, mm, ss;
  if (!digits(s, 5, 2, &day) || !digits(s, 12, 4, &year) || !timeOfDay(s, 17, &hh, &mm, &ss))
    return std::nullopt;
  return civil(year, monthOf(s.substr(8, 3)), day, hh, mm, ss);
}

// rfc850-date: "Sunday, 06-Nov-94 08:49:37 GMT". A two-digit year is taken
// as 19yy from 70 on and 20yy below (RFC 9110: the most recent year with
// those digits that is not more than 50 years ahead, for years to 2069).
std::optional<int64_t> parseRfc850(std::string_view s) {
  auto comma = s.find(',');
  if (comma == std::string_view::npos || !isLongDayName(s.substr(0, comma))) return std::nullopt;
  std::string_view r = s.substr(comma);  // ", 06-Nov-94 08:49:37 GMT"
  if (r.size() != 24 || r[1] != ' ' || r[4] != '-' || r[8] != '-' || r[11] != ' ' ||
      r.substr(20) != " GMT")
    return std::nullopt;
  int day, yy, hh, mm, ss;
  if (!digits(r, 2, 2, &day) || !digits(r, 9, 2, &yy) || !timeOfDay(r, 12, &hh, &mm, &ss))
    return std::nullopt;
  return civil(yy >= 70 ? 1900 + yy : 2000 + yy, monthOf(r.substr(5, 3)), day, hh, mm, ss);
}

// asctime-date: "Sun Nov  6 08:49:37 1994" (day as 2DIGIT or SP DIGIT).
std::optional<int64_t> parseAsctime(std::string_view s) {
  if (s.size() != 24 || s[3] != ' ' || s[7] != ' ' || s[10] != ' ' || s[19] != ' ' ||
      !isDayName(s.substr(0, 3)))
    return std::nullopt;
  int day, year, hh, mm, ss;
  if (s[8] == ' ') {
    if (!digits(s, 9, 1, &day)) return std::nullopt;
  } else if (!digits(s, 8, 2, &day)) {
    return std::nullopt;
  }
  if (!timeOfDay(s, 11, &hh, &mm, &ss) || !digits(s, 20, 4, &year)) return std::nullopt;
  return civil(year, monthOf(s.substr(4, 3)), day, hh, mm, ss);
}

}  // namespace

std::optional<int64_t> parseHttpDate(std::string_view text) {
  if (auto fast = parseImfFixdate(text)) return fast;
  if (auto old = parseRfc850(text)) return old;
  return parseAsctime(text);
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
