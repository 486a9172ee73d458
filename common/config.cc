#include "common/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <cctype>
#include <cstdlib>
#include <sstream>

namespace tern {
namespace po = boost::program_options;

Config::Config(std::string program, std::string env_prefix)
    : program_(std::move(program)), env_prefix_(std::move(env_prefix)) {
  add({"config", "", "YAML configuration file"});
}

void Config::add(Option option) { options_.push_back(std::move(option)); }

const Config::Option* Config::find(const std::string& key) const {
  for (const auto& o : options_) {
    if (o.key == key) return &o;
  }
  return nullptr;
}

namespace {

std::string dashed(std::string key) {
  std::replace(key.begin(), key.end(), '.', '-');
  std::replace(key.begin(), key.end(), '_', '-');
  return key;
}

std::string envName(const std::string& prefix, const std::string& key) {
  std::string out = prefix;
  for (char c : key) {
    out.push_back(c == '.' || c == '-'
                      ? '_'
                      : static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  }
  return out;
}

void flatten(const YAML::Node& node, const std::string& prefix,
             std::map<std::string, std::vector<std::string>>& out) {
  if (node.IsMap()) {
    for (const auto& kv : node) {
      std::string key = kv.first.as<std::string>();
      flatten(kv.second, prefix.empty() ? key : prefix + "." + key, out);
    }
  } else if (node.IsSequence()) {
    auto& v = out[prefix];
    for (const auto& item : node) v.push_back(item.as<std::string>());
  } else if (node.IsScalar()) {
    out[prefix] = {node.as<std::string>()};
  } else if (node.IsNull()) {
    out[prefix] = {};
  }
}

}  // namespace

Status Config::load(int argc, const char* const* argv, bool* help_requested) {
  po::options_description desc;
  desc.add_options()("help,h", "show this help");
  for (const auto& o : options_) {
    // Both spellings: --cache.disk_budget and --cache-disk-budget.
    desc.add_options()(o.key.c_str(), po::value<std::vector<std::string>>()->composing(),
                       o.help.c_str());
    if (dashed(o.key) != o.key) {
      desc.add_options()(dashed(o.key).c_str(), po::value<std::vector<std::string>>()->composing(),
                         "");
    }
  }
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(desc).run(), vm);
  } catch (const std::exception& e) {
    return Status::invalidArgument(e.what());
  }
  if (help_requested != nullptr) *help_requested = vm.count("help") > 0;

  std::map<std::string, std::vector<std::string>> flags, env, file;
  for (const auto& o : options_) {
    for (const auto& spelling : {o.key, dashed(o.key)}) {
      if (vm.count(spelling)) {
        auto& v = flags[o.key];
        auto given = vm[spelling].as<std::vector<std::string>>();
        v.insert(v.end(), given.begin(), given.end());
      }
    }
    if (const char* e = std::getenv(envName(env_prefix_, o.key).c_str())) {
      if (o.repeated) {
        std::stringstream ss(e);
        std::string item;
        auto& v = env[o.key];
        while (std::getline(ss, item, ',')) {
          if (!item.empty()) v.push_back(item);
        }
      } else {
        env[o.key] = {e};
      }
    }
  }
  std::string path;
  if (flags.count("config"))
    path = flags["config"].back();
  else if (env.count("config"))
    path = env["config"].back();
  if (!path.empty()) {
    try {
      YAML::Node root = YAML::LoadFile(path);
      if (!root.IsNull() && !root.IsMap())
        return Status::invalidArgument(path + ": top level must be a map");
      flatten(root, "", file);
    } catch (const std::exception& e) {
      return Status::invalidArgument(path + ": " + e.what());
    }
    for (const auto& [key, v] : file) {
      if (find(key) == nullptr)
        return Status::invalidArgument(path + ": unknown key '" + key + "'");
    }
  }
  for (const auto& o : options_) {
    std::vector<std::string> v = {o.default_value};
    if (o.repeated && o.default_value.empty()) v.clear();
    if (file.count(o.key)) v = file[o.key];
    if (env.count(o.key)) v = env[o.key];
    if (flags.count(o.key)) v = flags[o.key];
    if (!o.repeated && v.size() > 1) v = {v.back()};
    values_[o.key] = v;
  }
  return Status::ok();
}

std::string Config::usage() const {
  std::string out = "usage: " + program_ + " [--config file.yaml] [--key value ...]\n\n";
  for (const auto& o : options_) {
    out += "  --" + o.key + " (env " + envName(env_prefix_, o.key) + ")";
    if (!o.default_value.empty()) out += " [default: " + o.default_value + "]";
    out += "\n      " + o.help + "\n";
  }
  return out;
}

std::string Config::str(const std::string& key) const {
  auto it = values_.find(key);
  if (it == values_.end() || it->second.empty()) return {};
  return it->second.back();
}

std::vector<std::string> Config::list(const std::string& key) const {
  auto it = values_.find(key);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

Result<int64_t> Config::integer(const std::string& key) const {
  std::string s = str(key);
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0')
    return Status::invalidArgument(key + ": not an integer: '" + s + "'");
  return static_cast<int64_t>(v);
}

Result<uint64_t> Config::bytes(const std::string& key) const {
  auto r = parseBytes(str(key));
  if (!r.ok()) return Status::invalidArgument(key + ": " + r.status().message());
  return r;
}

Result<int64_t> Config::durationMs(const std::string& key) const {
  auto r = parseDurationMs(str(key));
  if (!r.ok()) return Status::invalidArgument(key + ": " + r.status().message());
  return r;
}

Result<bool> Config::boolean(const std::string& key) const {
  std::string s = str(key);
  if (s == "true" || s == "yes" || s == "on" || s == "1") return true;
  if (s == "false" || s == "no" || s == "off" || s == "0" || s.empty()) return false;
  return Status::invalidArgument(key + ": not a boolean: '" + s + "'");
}

Result<uint64_t> parseBytes(const std::string& text) {
  size_t i = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
  if (i == 0) return Status::invalidArgument("not a size: '" + text + "'");
  uint64_t n = std::strtoull(text.substr(0, i).c_str(), nullptr, 10);
  std::string unit = text.substr(i);
  static const std::pair<const char*, uint64_t> kUnits[] = {{"", 1},
                                                            {"B", 1},
                                                            {"K", 1000},
                                                            {"KB", 1000},
                                                            {"KiB", 1ULL << 10},
                                                            {"M", 1000000},
                                                            {"MB", 1000000},
                                                            {"MiB", 1ULL << 20},
                                                            {"G", 1000000000},
                                                            {"GB", 1000000000},
                                                            {"GiB", 1ULL << 30},
                                                            {"T", 1000000000000ULL},
                                                            {"TiB", 1ULL << 40}};
  for (const auto& [name, mult] : kUnits) {
    if (unit == name) return n * mult;
  }
  return Status::invalidArgument("unknown size unit in '" + text + "'");
}

Result<int64_t> parseDurationMs(const std::string& text) {
  size_t i = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
  if (i == 0) return Status::invalidArgument("not a duration: '" + text + "'");
  int64_t n = std::strtoll(text.substr(0, i).c_str(), nullptr, 10);
  std::string unit = text.substr(i);
  if (unit == "ms") return n;
  if (unit == "s" || unit.empty()) return n * 1000;
  if (unit == "m") return n * 60000;
  if (unit == "h") return n * 3600000;
  return Status::invalidArgument("unknown duration unit in '" + text + "'");
}

}  // namespace tern

namespace tern {

void Config::set(const std::string& key, std::vector<std::string> values) {
  values_[key] = std::move(values);
}

std::vector<std::string> Config::keys() const {
  std::vector<std::string> out;
  out.reserve(options_.size());
  for (const auto& o : options_) out.push_back(o.key);
  return out;
}

}  // namespace tern
