#pragma once
// Configuration: one YAML file per binary, every key overridable by an
// environment variable and by a command-line flag. Precedence, lowest first:
// built-in default, YAML file (--config), environment, flag.
//
// Keys are dotted paths ("cache.disk_budget"). The YAML file nests them
// (cache: {disk_budget: 1GiB}); the flag is --cache.disk_budget or
// --cache-disk-budget; the environment variable is the prefix plus the key in
// upper case with dots and dashes as underscores (TERN_EDGE_CACHE_DISK_BUDGET).
//
// Thread-safety: build and load once at start-up; reading is const; set()
// only where nothing reads the Config at the same time.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/result.h"

namespace tern {

class Config {
 public:
  struct Option {
    std::string key;
    std::string default_value;
    std::string help;
    bool repeated = false;  // may be given several times (flags) or as a YAML list
  };

  Config(std::string program, std::string env_prefix);
  void add(Option option);

  // Parses argv, the environment and the YAML file named by --config (or the
  // key "config"). Returns InvalidArgument with a clear message on unknown
  // keys, bad YAML or bad values. `*help_requested` is set for --help.
  Status load(int argc, const char* const* argv, bool* help_requested = nullptr);
  std::string usage() const;
  // Every key, in the order added.
  std::vector<std::string> keys() const;
  // Replaces a key's values (a configuration reload keeps what it applied).
  void set(const std::string& key, std::vector<std::string> values);

  std::string str(const std::string& key) const;
  std::vector<std::string> list(const std::string& key) const;
  Result<int64_t> integer(const std::string& key) const;
  Result<uint64_t> bytes(const std::string& key) const;      // "64MiB", "1G", "4096"
  Result<int64_t> durationMs(const std::string& key) const;  // "250ms", "5s", "2m", "1h"
  Result<bool> boolean(const std::string& key) const;

 private:
  const Option* find(const std::string& key) const;
  std::string program_;
  std::string env_prefix_;
  std::vector<Option> options_;
  std::map<std::string, std::vector<std::string>> values_;
};

// Parsers shared with other code.
Result<uint64_t> parseBytes(const std::string& text);
Result<int64_t> parseDurationMs(const std::string& text);

}  // namespace tern
