#include "common/config.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "tests/support/temp_dir.h"

namespace tern {
namespace {

Config make() {
  Config c("prog", "TERN_TEST_");
  c.add({"listen", "127.0.0.1:8080", "address"});
  c.add({"cache.disk_budget", "1GiB", "bytes"});
  c.add({"cache.ttl", "5s", "duration"});
  c.add({"origin", "", "origins", true});
  c.add({"flag", "false", "a boolean"});
  return c;
}

TEST(ConfigTest, DefaultsThenFileThenEnvThenFlags) {
  testing::TempDir dir;
  std::string path = dir.sub("c.yaml");
  std::ofstream(path) << "listen: 0.0.0.0:1\ncache:\n  disk_budget: 2GiB\n  ttl: 250ms\norigin:\n  "
                         "- http://a:1\n  - http://b:2\n";
  setenv("TERN_TEST_CACHE_DISK_BUDGET", "3GiB", 1);
  Config c = make();
  const char* argv[] = {"prog", "--config", path.c_str(), "--cache-ttl", "2m", "--flag", "true"};
  ASSERT_TRUE(c.load(7, argv).isOk());
  unsetenv("TERN_TEST_CACHE_DISK_BUDGET");
  EXPECT_EQ(c.str("listen"), "0.0.0.0:1");               // file over default
  EXPECT_EQ(*c.bytes("cache.disk_budget"), 3ULL << 30);  // env over file
  EXPECT_EQ(*c.durationMs("cache.ttl"), 120000);         // flag over file
  EXPECT_EQ(c.list("origin"), (std::vector<std::string>{"http://a:1", "http://b:2"}));
  EXPECT_TRUE(*c.boolean("flag"));
}

TEST(ConfigTest, ClearErrors) {
  testing::TempDir dir;
  std::string path = dir.sub("bad.yaml");
  std::ofstream(path) << "cache:\n  unknown_key: 1\n";
  Config c = make();
  const char* argv[] = {"prog", "--config", path.c_str()};
  Status s = c.load(3, argv);
  EXPECT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("unknown key 'cache.unknown_key'"), std::string::npos) << s.message();

  Config d = make();
  const char* argv2[] = {"prog", "--no-such-flag", "1"};
  EXPECT_FALSE(d.load(3, argv2).isOk());

  std::ofstream(path) << "listen: [unclosed\n";
  Config e = make();
  EXPECT_FALSE(e.load(3, argv).isOk());

  EXPECT_FALSE(parseBytes("12 parsecs").ok());
  EXPECT_EQ(*parseBytes("64MiB"), 64ULL << 20);
  EXPECT_FALSE(parseDurationMs("soon").ok());
  EXPECT_EQ(*parseDurationMs("1h"), 3600000);
}

TEST(ConfigTest, HelpListsEveryKeyWithItsEnvironmentVariable) {
  Config c = make();
  const char* argv[] = {"prog", "--help"};
  bool help = false;
  ASSERT_TRUE(c.load(2, argv, &help).isOk());
  EXPECT_TRUE(help);
  EXPECT_NE(c.usage().find("--cache.disk_budget (env TERN_TEST_CACHE_DISK_BUDGET) [default: 1GiB]"),
            std::string::npos)
      << c.usage();
}

}  // namespace
}  // namespace tern
