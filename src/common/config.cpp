#include "common/config.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <toml++/toml.h>

namespace common {

config_error::config_error(std::string key, const std::string& message)
    : std::runtime_error(fmt::format("config: {}", message)), key_(std::move(key)) {}

secret::~secret() {
  // Best effort: do not leave the secret in freed heap memory.
  volatile char* p = value_.data();
  for (std::size_t i = 0; i < value_.size(); ++i) p[i] = 0;
}

env_lookup process_environment() {
  return [](const std::string& name) -> std::optional<std::string> {
    if (const char* v = std::getenv(name.c_str())) return std::string(v);
    return std::nullopt;
  };
}

std::chrono::milliseconds parse_duration(std::string_view text) {
  std::int64_t number = 0;
  const auto* begin = text.data();
  const auto* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(begin, end, number);
  if (ec != std::errc{} || ptr == begin || number < 0) {
    throw std::invalid_argument("expected a whole number followed by ms, s, m or h (e.g. \"250ms\", \"5s\")");
  }
  const std::string_view unit(ptr, static_cast<std::size_t>(end - ptr));
  if (unit == "ms") return std::chrono::milliseconds(number);
  if (unit == "s") return std::chrono::seconds(number);
  if (unit == "m") return std::chrono::minutes(number);
  if (unit == "h") return std::chrono::hours(number);
  throw std::invalid_argument("expected a unit of ms, s, m or h (e.g. \"250ms\", \"5s\")");
}

std::string format_duration(std::chrono::milliseconds duration) {
  const auto ms = duration.count();
  if (ms != 0 && ms % 3'600'000 == 0) return fmt::format("{}h", ms / 3'600'000);
  if (ms != 0 && ms % 60'000 == 0) return fmt::format("{}m", ms / 60'000);
  if (ms % 1000 == 0) return fmt::format("{}s", ms / 1000);
  return fmt::format("{}ms", ms);
}

std::string_view to_string(mq_type type) noexcept { return type == mq_type::redis ? "redis" : "kafka"; }

mq_type parse_mq_type(config_reader& reader) {
  return reader.get_choice("mq.type", "kafka", {"kafka", "redis"}, {"REDIS_MQ_TYPE"}) == "redis" ? mq_type::redis
                                                                                                 : mq_type::kafka;
}

struct config_reader::raw_value {
  std::string origin;                // "RELAY_BATCH_SIZE" or "relay.batch_size"
  std::optional<std::string> text;   // set when the value came from the environment
  const toml::node* node = nullptr;  // set when it came from the file
};

config_reader::config_reader(std::string env_prefix, std::unique_ptr<toml::table> root, env_lookup env)
    : env_prefix_(std::move(env_prefix)), root_(std::move(root)), env_(std::move(env)) {}
config_reader::config_reader(config_reader&&) noexcept = default;
config_reader::~config_reader() = default;

config_reader config_reader::from_file(const std::filesystem::path& path, std::string env_prefix, env_lookup env) {
  std::ifstream in(path);
  if (!in)
    throw config_error("--config", fmt::format("cannot read {}: check the path and its permissions", path.string()));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return from_string(buffer.str(), std::move(env_prefix), std::move(env));
}

config_reader config_reader::from_string(std::string_view toml_text, std::string env_prefix, env_lookup env) {
  try {
    auto table = std::make_unique<toml::table>(toml::parse(toml_text));
    return config_reader(std::move(env_prefix), std::move(table), std::move(env));
  } catch (const toml::parse_error& e) {
    throw config_error("--config", fmt::format("TOML syntax error at line {}, column {}: {}", e.source().begin.line,
                                               e.source().begin.column, e.description()));
  }
}

std::string config_reader::env_name(std::string_view key) const {
  std::string name = env_prefix_ + "_";
  for (char c : key) name += (c == '.') ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return name;
}

std::optional<config_reader::raw_value> config_reader::lookup(std::string_view key, aliases env_aliases) {
  consumed_.emplace(key);
  const std::string primary = env_name(key);
  if (auto v = env_(primary)) return raw_value{primary, std::move(v), nullptr};
  for (auto alias : env_aliases) {
    if (auto v = env_(std::string(alias))) return raw_value{std::string(alias), std::move(v), nullptr};
  }
  if (const toml::node* node = root_->at_path(key).node()) return raw_value{std::string(key), std::nullopt, node};
  return std::nullopt;
}

namespace {

[[noreturn]] void bad_value(const std::string& origin, std::string_view expected) {
  throw config_error(origin, fmt::format("{} must be {}", origin, expected));
}

std::string string_of(const std::string& origin, const toml::node& node, std::string_view expected) {
  if (auto s = node.value<std::string>(); s && node.is_string()) return *s;
  bad_value(origin, expected);
}

}  // namespace

std::string config_reader::get_string(std::string_view key, std::string_view fallback, aliases env_aliases) {
  auto raw = lookup(key, env_aliases);
  if (!raw) return std::string(fallback);
  if (raw->text) return *raw->text;
  return string_of(raw->origin, *raw->node, "a string");
}

std::int64_t config_reader::get_int(std::string_view key, std::int64_t fallback, std::int64_t min, std::int64_t max,
                                    aliases env_aliases) {
  auto raw = lookup(key, env_aliases);
  const std::string expected = fmt::format("a whole number in {}..{}", min, max);
  std::int64_t value = fallback;
  if (raw && raw->text) {
    const auto& t = *raw->text;
    auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), value);
    if (ec != std::errc{} || ptr != t.data() + t.size())
      bad_value(raw->origin, fmt::format("{}, got \"{}\"", expected, t));
  } else if (raw) {
    if (!raw->node->is_integer()) bad_value(raw->origin, expected);
    value = *raw->node->value<std::int64_t>();
  }
  if (value < min || value > max) {
    bad_value(raw ? raw->origin : std::string(key), fmt::format("{}, got {}", expected, value));
  }
  return value;
}

bool config_reader::get_bool(std::string_view key, bool fallback, aliases env_aliases) {
  auto raw = lookup(key, env_aliases);
  if (!raw) return fallback;
  if (raw->text) {
    if (*raw->text == "true" || *raw->text == "1") return true;
    if (*raw->text == "false" || *raw->text == "0") return false;
    bad_value(raw->origin, fmt::format("true or false, got \"{}\"", *raw->text));
  }
  if (!raw->node->is_boolean()) bad_value(raw->origin, "true or false");
  return *raw->node->value<bool>();
}

std::chrono::milliseconds config_reader::get_duration(std::string_view key, std::chrono::milliseconds fallback,
                                                      std::chrono::milliseconds min, std::chrono::milliseconds max,
                                                      aliases env_aliases) {
  auto raw = lookup(key, env_aliases);
  std::chrono::milliseconds value = fallback;
  std::string origin(key);
  if (raw) {
    origin = raw->origin;
    const std::string text = raw->text ? *raw->text : string_of(origin, *raw->node, "a duration string such as \"5s\"");
    try {
      value = parse_duration(text);
    } catch (const std::invalid_argument& e) {
      bad_value(origin, fmt::format("a duration: {}, got \"{}\"", e.what(), text));
    }
  }
  if (value < min || value > max) {
    bad_value(origin, fmt::format("a duration in {}ms..{}ms, got {}ms", min.count(), max.count(), value.count()));
  }
  return value;
}

std::string config_reader::get_log_level(std::string_view fallback) {
  return get_choice("log.level", fallback, {"trace", "debug", "info", "warn", "error", "critical", "off"});
}

std::string config_reader::get_choice(std::string_view key, std::string_view fallback,
                                      std::initializer_list<std::string_view> allowed, aliases env_aliases) {
  auto raw = lookup(key, env_aliases);
  if (!raw) return std::string(fallback);
  std::string value = raw->text ? *raw->text : string_of(raw->origin, *raw->node, "a string");
  if (std::find(allowed.begin(), allowed.end(), value) == allowed.end()) {
    bad_value(raw->origin, fmt::format("one of \"{}\", got \"{}\"", fmt::join(allowed, "\", \""), value));
  }
  return value;
}

std::vector<std::string> config_reader::get_string_list(std::string_view key, std::vector<std::string> fallback) {
  auto raw = lookup(key, {});
  if (!raw) return fallback;
  std::vector<std::string> out;
  if (raw->text) {
    std::stringstream ss(*raw->text);
    for (std::string item; std::getline(ss, item, ',');) {
      if (!item.empty()) out.push_back(item);
    }
    return out;
  }
  const auto* array = raw->node->as_array();
  if (array == nullptr) bad_value(raw->origin, "an array of strings");
  for (const auto& element : *array) out.push_back(string_of(raw->origin, element, "an array of strings"));
  return out;
}

std::map<std::string, std::string> config_reader::get_properties(std::string_view key) {
  std::map<std::string, std::string> out;
  consumed_.emplace(key);
  if (const auto* table = root_->at_path(key).as_table()) {
    for (const auto& [name, node] : *table) {
      const std::string origin = fmt::format("{}.{}", key, name.str());
      if (node.is_string()) {
        out[std::string(name.str())] = *node.value<std::string>();
      } else if (node.is_integer() || node.is_boolean()) {
        // librdkafka takes every property as text; accept TOML numbers and booleans for convenience.
        out[std::string(name.str())] =
            node.is_integer() ? std::to_string(*node.value<std::int64_t>()) : (*node.value<bool>() ? "true" : "false");
      } else {
        bad_value(origin, "a string, number or boolean");
      }
    }
  } else if (root_->at_path(key).node() != nullptr) {
    bad_value(std::string(key), "a table of properties");
  }
  const std::string env_var = env_name(key);
  if (auto text = env_(env_var)) {
    std::stringstream ss(*text);
    for (std::string item; std::getline(ss, item, ';');) {
      if (item.empty()) continue;
      const auto eq = item.find('=');
      if (eq == std::string::npos || eq == 0) bad_value(env_var, fmt::format("\"name=value;...\", got \"{}\"", item));
      out[item.substr(0, eq)] = item.substr(eq + 1);
    }
  }
  return out;
}

std::vector<std::string> config_reader::table_names(std::string_view key) const {
  std::vector<std::string> out;
  const auto node = root_->at_path(key);
  if (!node) return out;
  const auto* table = node.as_table();
  if (table == nullptr) bad_value(std::string(key), "a table such as [" + std::string(key) + ".<name>]");
  for (const auto& [name, child] : *table) {
    const std::string origin = fmt::format("{}.{}", key, name.str());
    if (!child.is_table()) bad_value(origin, "a table such as [" + origin + "]");
    out.emplace_back(name.str());
  }
  std::sort(out.begin(), out.end());
  return out;
}

namespace {
void collect_leaf_keys(const toml::table& table, const std::string& prefix, std::vector<std::string>& out) {
  for (const auto& [name, node] : table) {
    std::string path = prefix.empty() ? std::string(name.str()) : prefix + "." + std::string(name.str());
    if (const auto* sub = node.as_table()) {
      out.push_back(path);  // the table itself, so a consumed property table covers its children
      collect_leaf_keys(*sub, path, out);
    } else {
      out.push_back(std::move(path));
    }
  }
}
}  // namespace

void config_reader::reject_unknown_keys() const {
  std::vector<std::string> keys;
  collect_leaf_keys(*root_, "", keys);
  for (const auto& key : keys) {
    if (root_->at_path(key).is_table()) continue;
    if (consumed_.contains(key)) continue;
    // A child of a consumed table (e.g. kafka.properties.linger.ms) is known.
    bool covered = false;
    for (auto pos = key.rfind('.'); pos != std::string::npos && !covered; pos = key.rfind('.', pos - 1)) {
      covered = consumed_.contains(std::string_view(key).substr(0, pos));
      if (pos == 0) break;
    }
    if (!covered) {
      throw config_error(key, fmt::format("unknown key {}: check its spelling against the configuration reference "
                                          "in README.md",
                                          key));
    }
  }
}

secret read_secret(std::string_view credential, std::string_view env_var, const env_lookup& env) {
  const std::string var(env_var);
  if (auto v = env(var)) return secret(*v);
  auto read_file = [&](const std::string& origin, const std::filesystem::path& path) {
    std::ifstream in(path);
    if (!in) throw config_error(origin, fmt::format("{}: cannot read {}", origin, path.string()));
    std::stringstream buffer;
    buffer << in.rdbuf();
    std::string value = buffer.str();
    while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) value.pop_back();
    return secret(std::move(value));
  };
  if (auto path = env(var + "_FILE")) return read_file(var + "_FILE", *path);
  if (auto dir = env("CREDENTIALS_DIRECTORY")) {
    const auto path = std::filesystem::path(*dir) / std::string(credential);
    if (std::filesystem::exists(path)) return read_file(std::string("credential ") + std::string(credential), path);
  }
  return secret();
}

}  // namespace common
