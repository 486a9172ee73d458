#pragma once
// Splits a fuzzer's bytes into the pieces a target needs: header fields
// ("name: value" lines), a few strings, numbers. Deterministic, so that a
// crashing input replays.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "edge/http/fields.h"

namespace tern::fuzz {

class Input {
 public:
  Input(const uint8_t* data, size_t size) : s_(reinterpret_cast<const char*>(data), size) {}
  // The next piece up to a NUL byte (or the rest).
  std::string_view piece() {
    size_t end = s_.find('\0');
    std::string_view out = s_.substr(0, end);
    s_ = end == std::string_view::npos ? std::string_view() : s_.substr(end + 1);
    return out;
  }
  uint64_t number() {
    uint64_t v = 0;
    for (int i = 0; i < 8 && !s_.empty(); ++i) {
      v = (v << 8) | static_cast<unsigned char>(s_.front());
      s_.remove_prefix(1);
    }
    return v;
  }
  // Header fields from "name: value" lines of the next piece.
  edge::http::Fields fields() {
    edge::http::Fields out;
    std::string_view text = piece();
    while (!text.empty()) {
      size_t nl = text.find('\n');
      std::string_view line = text.substr(0, nl);
      text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
      size_t colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      out.push_back({std::string(line.substr(0, colon)),
                     std::string(edge::http::trim(line.substr(colon + 1)))});
    }
    return out;
  }
  std::string_view rest() const { return s_; }

 private:
  std::string_view s_;
};

}  // namespace tern::fuzz
