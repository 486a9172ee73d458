#include "common/hash.h"

#include <gtest/gtest.h>

namespace tern {
namespace {

TEST(HashTest, StreamingEqualsOneShot) {
  std::string data(100000, 'x');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 31);
  Hasher64 h;
  for (size_t i = 0; i < data.size(); i += 777) h.update(std::string_view(data).substr(i, 777));
  EXPECT_EQ(h.digest(), hash64(data));
}

TEST(HashTest, StableAcrossRuns) {
  // On-disk formats depend on these values never changing.
  EXPECT_EQ(hash64("tern"), hash64("tern"));
  EXPECT_NE(hash64("tern"), hash64("Tern"));
  EXPECT_EQ(checksum32(""), checksum32(""));
  EXPECT_NE(checksum32("a"), checksum32("b"));
}

}  // namespace
}  // namespace tern
