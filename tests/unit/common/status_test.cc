#include "common/status.h"

#include <gtest/gtest.h>

#include "common/result.h"

namespace tern {
namespace {

TEST(StatusTest, OkByDefault) {
  Status s;
  EXPECT_TRUE(s.isOk());
  EXPECT_EQ(s.toString(), "OK");
}

TEST(StatusTest, CarriesCodeSourceAndMessage) {
  Status s = Status::corruption("bad chunk");
  EXPECT_FALSE(s.isOk());
  EXPECT_TRUE(s.isCorruption());
  EXPECT_EQ(s.source(), ErrorSource::kStorage);
  EXPECT_EQ(s.toString(), "Corruption: bad chunk");
  EXPECT_EQ(s.withSource(ErrorSource::kOrigin).source(), ErrorSource::kOrigin);
}

Result<int> half(int x) {
  if (x % 2 != 0) return Status::invalidArgument("odd");
  return x / 2;
}

Status quarter(int x, int* out) {
  TERN_ASSIGN_OR_RETURN(int h, half(x));
  TERN_ASSIGN_OR_RETURN(*out, half(h));
  return Status::ok();
}

TEST(ResultTest, ValueOrStatusAndMacros) {
  EXPECT_EQ(*half(8), 4);
  EXPECT_FALSE(half(3).ok());
  EXPECT_EQ(half(3).status().code(), StatusCode::kInvalidArgument);
  int q = 0;
  EXPECT_TRUE(quarter(8, &q).isOk());
  EXPECT_EQ(q, 2);
  EXPECT_FALSE(quarter(6, &q).isOk());
}

}  // namespace
}  // namespace tern
