#pragma once
// Bearer tokens accepted by the coordinator's APIs. An empty set means the
// APIs are open (the laptop default; the coordinator logs a warning).
//
// Thread-safety: immutable after construction.

#include <string>
#include <string_view>
#include <vector>

namespace tern::coordinator {

class TokenSet {
 public:
  TokenSet() = default;
  explicit TokenSet(std::vector<std::string> tokens);

  bool open() const { return tokens_.empty(); }
  // `authorization` is the whole header value ("Bearer <token>"); compared
  // in constant time.
  bool allows(std::string_view authorization) const;

 private:
  std::vector<std::string> tokens_;
};

}  // namespace tern::coordinator
