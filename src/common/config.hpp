#pragma once
// Typed configuration from one TOML file per daemon, with environment overrides.
//
// Precedence for a key `section.name` of a daemon whose env prefix is `RELAY`:
//   1. RELAY_SECTION_NAME            (always)
//   2. the key's documented aliases  (e.g. DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS, REDIS_MQ_TYPE)
//   3. the TOML file
//   4. the built-in default
// Secrets never come from TOML: see read_secret().
//
// Errors are config_error naming the key and the fix; daemons exit with code 2 on them.
// Not thread-safe: use it while starting (or reloading) and drop it.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace toml {
inline namespace v3 {
class table;
}
}  // namespace toml

namespace common {

/// Exit code of a daemon whose configuration is invalid.
inline constexpr int exit_config_error = 2;

class config_error : public std::runtime_error {
 public:
  config_error(std::string key, const std::string& message);
  /// The dotted key (or environment variable) at fault.
  const std::string& key() const noexcept { return key_; }

 private:
  std::string key_;
};

/// A secret value: never formatted, never logged. reveal() is the only way out.
class secret {
 public:
  secret() = default;
  explicit secret(std::string value) : value_(std::move(value)) {}
  secret(const secret&) = default;
  secret& operator=(const secret&) = default;
  ~secret();
  const std::string& reveal() const noexcept { return value_; }
  bool empty() const noexcept { return value_.empty(); }

 private:
  std::string value_;
};

/// Looks up an environment variable; injectable for tests.
using env_lookup = std::function<std::optional<std::string>(const std::string&)>;
env_lookup process_environment();

/// Parses "250ms", "1s", "5m", "2h" (a whole number and a unit). Throws std::invalid_argument.
std::chrono::milliseconds parse_duration(std::string_view text);
/// The inverse for logs and messages: 2h, 5m, 3s, 1500ms (the largest unit that divides it).
std::string format_duration(std::chrono::milliseconds duration);

/// The message queue between the relay and the broadcaster (key mq.type).
enum class mq_type { kafka, redis };
std::string_view to_string(mq_type type) noexcept;

class config_reader {
 public:
  /// `env_prefix` such as "RELAY"; `root` is the parsed TOML document.
  config_reader(std::string env_prefix, std::unique_ptr<toml::table> root, env_lookup env = process_environment());
  config_reader(config_reader&&) noexcept;
  ~config_reader();

  /// Reads and parses a TOML file; a syntax error becomes a config_error with line and column.
  static config_reader from_file(const std::filesystem::path& path, std::string env_prefix,
                                 env_lookup env = process_environment());
  /// From TOML text (tests, embedded defaults).
  static config_reader from_string(std::string_view toml_text, std::string env_prefix,
                                   env_lookup env = process_environment());

  using aliases = std::initializer_list<std::string_view>;

  std::string get_string(std::string_view key, std::string_view fallback, aliases env_aliases = {});
  std::int64_t get_int(std::string_view key, std::int64_t fallback, std::int64_t min, std::int64_t max,
                       aliases env_aliases = {});
  bool get_bool(std::string_view key, bool fallback, aliases env_aliases = {});
  std::chrono::milliseconds get_duration(std::string_view key, std::chrono::milliseconds fallback,
                                         std::chrono::milliseconds min, std::chrono::milliseconds max,
                                         aliases env_aliases = {});
  /// One of `allowed` (e.g. "kafka" | "redis").
  std::string get_choice(std::string_view key, std::string_view fallback,
                         std::initializer_list<std::string_view> allowed, aliases env_aliases = {});
  /// log.level: one of spdlog's level names (trace, debug, info, warn, error, critical, off).
  std::string get_log_level(std::string_view fallback);
  std::vector<std::string> get_string_list(std::string_view key, std::vector<std::string> fallback);
  /// A table of free-form string properties passed through as they are (e.g. [kafka.properties]).
  /// Environment: PREFIX_KAFKA_PROPERTIES="k1=v1;k2=v2" replaces entries of the same name.
  std::map<std::string, std::string> get_properties(std::string_view key);
  /// Names of the sub-tables of table `key` in the file (e.g. "eth" for [chains.eth]), sorted;
  /// empty when `key` is absent. Their keys are read with the other getters ("chains.eth.decimals").
  /// Throws config_error when `key` is not a table or holds a value that is not a table.
  std::vector<std::string> table_names(std::string_view key) const;

  /// The environment variable that overrides `key` (for messages and docs).
  std::string env_name(std::string_view key) const;

  /// Throws config_error for the first key in the file that no get_*() asked for.
  void reject_unknown_keys() const;

 private:
  struct raw_value;
  std::optional<raw_value> lookup(std::string_view key, aliases env_aliases);

  std::string env_prefix_;
  std::unique_ptr<toml::table> root_;
  env_lookup env_;
  std::set<std::string, std::less<>> consumed_;
};

/// mq.type (alias REDIS_MQ_TYPE): "kafka" (the default) or "redis". The one parser of the key.
mq_type parse_mq_type(config_reader& reader);

/// Reads a secret such as "database-password" from, in order: the env variable `env_var`,
/// the file named by `<env_var>_FILE`, or `$CREDENTIALS_DIRECTORY/<credential>` (systemd LoadCredential=).
/// Returns an empty secret when none is set. Trailing newlines of files are stripped.
secret read_secret(std::string_view credential, std::string_view env_var,
                   const env_lookup& env = process_environment());

}  // namespace common
