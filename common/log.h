#pragma once
// Structured logging: one line per event, "ts=... level=... msg=... k=v ...".
//
// Thread-safe: each line is formatted in full and written with one call.
// Usage:
//   TERN_LOG(kWarn, "store moved aside", {{"path", path}, {"reason", s.toString()}});

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace tern::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

using Field = std::pair<std::string_view, std::string_view>;

void setLevel(Level level);
Level level();
// Parses "debug" | "info" | "warn" | "error"; returns false if unknown.
bool parseLevel(std::string_view text, Level* out);

void write(Level level, std::string_view msg, std::initializer_list<Field> fields = {});

}  // namespace tern::log

#define TERN_LOG(lvl, msg, ...)                                                    \
  do {                                                                             \
    if (::tern::log::Level::lvl >= ::tern::log::level())                           \
      ::tern::log::write(::tern::log::Level::lvl, msg __VA_OPT__(, ) __VA_ARGS__); \
  } while (0)
