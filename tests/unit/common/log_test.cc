#include "common/log.h"

#include <gtest/gtest.h>

namespace tern::log {
namespace {

TEST(LogTest, ParsesLevels) {
  Level l;
  EXPECT_TRUE(parseLevel("debug", &l));
  EXPECT_EQ(l, Level::kDebug);
  EXPECT_TRUE(parseLevel("error", &l));
  EXPECT_EQ(l, Level::kError);
  EXPECT_FALSE(parseLevel("loud", &l));
}

TEST(LogTest, LevelFiltersLines) {
  setLevel(Level::kError);
  ::testing::internal::CaptureStderr();
  TERN_LOG(kInfo, "hidden");
  TERN_LOG(kError, "shown value", {{"k", "a b"}, {"q", "x\"y"}});
  std::string out = ::testing::internal::GetCapturedStderr();
  setLevel(Level::kInfo);
  EXPECT_EQ(out.find("hidden"), std::string::npos);
  EXPECT_NE(out.find("level=error msg=\"shown value\" k=\"a b\" q=\"x\\\"y\""), std::string::npos)
      << out;
}

}  // namespace
}  // namespace tern::log
