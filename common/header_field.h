#pragma once
// One header field of an HTTP message: what the edge's HTTP layer works on
// and what the store keeps with a response, one type for both, so a stored
// response's fields are read where they lie (no conversion on a hit).
// Thread-safety: plain value.

#include <string>
#include <vector>

namespace tern {

struct HeaderField {
  std::string name;
  std::string value;
  bool operator==(const HeaderField&) const = default;
};

using HeaderFields = std::vector<HeaderField>;

}  // namespace tern
