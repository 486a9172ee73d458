#include "coordinator/api/auth.h"

#include <openssl/crypto.h>

namespace tern::coordinator {

TokenSet::TokenSet(std::vector<std::string> tokens) {
  for (auto& t : tokens)
    if (!t.empty()) tokens_.push_back(std::move(t));
}

bool TokenSet::allows(std::string_view authorization) const {
  if (tokens_.empty()) return true;
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size()) return false;
  for (size_t i = 0; i < kScheme.size(); ++i)
    if (static_cast<char>(std::tolower(static_cast<unsigned char>(authorization[i]))) != kScheme[i])
      return false;
  std::string_view token = authorization.substr(kScheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  bool ok = false;
  for (const auto& t : tokens_)
    if (t.size() == token.size() && CRYPTO_memcmp(t.data(), token.data(), t.size()) == 0) ok = true;
  return ok;
}

}  // namespace tern::coordinator
