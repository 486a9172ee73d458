// RFC 8941 Dictionaries, parsed strictly: the RFC's own examples and the
// edge cases of each bare item type.

#include "edge/http/structured_fields.h"

#include <gtest/gtest.h>

namespace tern::edge::http::sf {
namespace {

const Item& item(const Dictionary& d, size_t i) { return std::get<Item>(d[i].second); }

TEST(StructuredFieldsTest, ExamplesOfTheRfc) {
  // RFC 8941 3.2
  auto d = parseDictionary(R"(en="Applepie", da=:w4ZibGV0w6ZydGUK:)");
  ASSERT_TRUE(d);
  ASSERT_EQ(d->size(), 2u);
  EXPECT_EQ((*d)[0].first, "en");
  EXPECT_EQ(std::get<std::string>(item(*d, 0).value), "Applepie");
  EXPECT_EQ(std::get<ByteSequence>(item(*d, 1).value).base64, "w4ZibGV0w6ZydGUK");
  d = parseDictionary("a=?0, b, c; foo=bar");
  ASSERT_TRUE(d);
  EXPECT_EQ(std::get<bool>(item(*d, 0).value), false);
  EXPECT_EQ(std::get<bool>(item(*d, 1).value), true);
  EXPECT_EQ(std::get<bool>(item(*d, 2).value), true);
  ASSERT_EQ(item(*d, 2).params.size(), 1u);
  EXPECT_EQ(std::get<Token>(item(*d, 2).params[0].second).value, "bar");
  d = parseDictionary("rating=1.5, feelings=(joy sadness)");
  ASSERT_TRUE(d);
  EXPECT_DOUBLE_EQ(std::get<double>(item(*d, 0).value), 1.5);
  const auto& list = std::get<InnerList>((*d)[1].second);
  ASSERT_EQ(list.items.size(), 2u);
  EXPECT_EQ(std::get<Token>(list.items[1].value).value, "sadness");
  // Duplicate keys: the last value, at the first place.
  d = parseDictionary("a=1, b=2, a=3");
  ASSERT_TRUE(d);
  ASSERT_EQ(d->size(), 2u);
  EXPECT_EQ(std::get<int64_t>(item(*d, 0).value), 3);
  // Whitespace the grammar allows.
  EXPECT_TRUE(parseDictionary("  a=1 ,\tb=2  "));
  EXPECT_TRUE(parseDictionary("a=(  1 2  );x, b=-5, c=*tok/en:x, d=\"q\\\"uote\""));
  EXPECT_TRUE(parseDictionary(""));
}

TEST(StructuredFieldsTest, RejectsWhatIsNotADictionary) {
  for (const char* bad : {
           "A=1",                 // keys are lower case
           "1a=1",                // nor start with a digit
           "a=1,",                // trailing comma
           ",a=1",                // leading comma
           "a=1 b=2",             // no comma
           "a=1,,b=2",            // empty member
           "a=\"unterminated",    // string
           "a=\"bad\\escape\"",   // only \" and \\ are escapes
           "a=\"tab\there\"",     // no control characters
           "a=1234567890123456",  // 16 integer digits
           "a=1234567890123.5",   // 13 integer digits in a decimal
           "a=1.2345",            // 4 fraction digits
           "a=1.",                // no fraction
           "a=-",                 // no digits
           "a=?2",                // booleans are ?0 and ?1
           "a=:not base64!:",     // byte sequence
           "a=:abc",              // unterminated
           "a=(1 2",              // inner list without ')'
           "a=(1,2)",             // inner list items separated by SP
           "a=1;",                // parameter without a key
           "a=1;B=2",             // parameter key case
           "a=@",                 // no such bare item
           "a=1\tb",              // tab inside
       }) {
    EXPECT_FALSE(parseDictionary(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace tern::edge::http::sf
