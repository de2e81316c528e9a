#include "wallet/config.hpp"

#include <algorithm>
#include <limits>

#include <fmt/format.h>

#include "chain/units.hpp"

namespace wallet {

namespace {

// numeric(78, 18): 60 digits before the point.
constexpr unsigned numeric_integer_digits = 60;
constexpr unsigned numeric_scale = 18;

chain::uint256 pow10(unsigned exponent) {
  chain::uint256 out = 1;
  for (unsigned i = 0; i < exponent; ++i) out *= 10;
  return out;
}

bool valid_chain_name(const std::string& name) {
  return !name.empty() && name.size() <= 32 && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// An IP address to bind (not a host name: binding must not depend on DNS).

}  // namespace

chain_rules make_chain_rules(std::string name, unsigned decimals, const std::optional<std::string>& max_amount) {
  const std::string prefix = "chains." + name;
  if (!valid_chain_name(name)) {
    throw common::config_error(prefix, fmt::format("chain name \"{}\" must be 1..32 of a-z, 0-9 and _", name));
  }
  if (decimals > numeric_scale) {
    throw common::config_error(prefix + ".decimals",
                               fmt::format("{}.decimals must be 0..{} (the scale of the balance columns), got {}",
                                           prefix, numeric_scale, decimals));
  }
  chain_rules rules;
  rules.name = std::move(name);
  rules.decimals = decimals;
  // 10^60 whole units do not fit numeric(78, 18); for 18 decimals 2^256 wei comes first, which
  // parse_units reports as overflow.
  rules.max_amount = decimals + numeric_integer_digits >= 78 ? std::numeric_limits<chain::uint256>::max()
                                                             : pow10(numeric_integer_digits + decimals) - 1;
  if (max_amount) {
    auto parsed = chain::parse_units(*max_amount, decimals, rules.max_amount);
    if (!parsed || parsed.value == 0) {
      throw common::config_error(
          prefix + ".max_amount",
          fmt::format("{}.max_amount must be a positive decimal string with at most {} decimals such as \"1000\": {}",
                      prefix, decimals, parsed ? "got zero" : parsed.message));
    }
    rules.max_amount = parsed.value;
  }
  return rules;
}

service_config parse_config(common::config_reader& reader) {
  using namespace std::chrono_literals;
  service_config config;
  config.log_level = reader.get_log_level(config.log_level);

  config.database = common::parse_database_config(reader, "wallet-service");
  config.pool_size = static_cast<std::size_t>(reader.get_int("database.pool_size", 16, 1, 1000));
  config.acquire_timeout = reader.get_duration("database.acquire_timeout", config.acquire_timeout, 1ms, 5min);
  config.statement_timeout = reader.get_duration("database.statement_timeout", config.statement_timeout, 100ms, 1h);
  config.max_attempts = static_cast<int>(reader.get_int("database.max_attempts", config.max_attempts, 1, 100));

  config.http = common::http::parse_server_config(reader, 8080);
  // Handlers block on the database: one I/O thread per pooled connection keeps both busy.
  config.http.threads =
      static_cast<std::size_t>(reader.get_int("http.threads", static_cast<std::int64_t>(config.pool_size), 1, 1000));
  config.http.request_timeout = reader.get_duration("http.request_timeout", config.http.request_timeout, 100ms, 10min);
  config.http.idle_timeout = reader.get_duration("http.idle_timeout", config.http.idle_timeout, 100ms, 1h);
  config.http.body_limit = 64 * 1024;
  config.shutdown_timeout = reader.get_duration("http.shutdown_timeout", config.shutdown_timeout, 0ms, 10min);

  config.grpc.enabled = reader.get_bool("grpc.enabled", config.grpc.enabled);
  config.grpc.listen = common::http::parse_listen_address(reader, "grpc.listen", config.grpc.listen);
  config.grpc.port = static_cast<std::uint16_t>(reader.get_int("grpc.port", config.grpc.port, 0, 65535));
  config.grpc.threads =
      static_cast<std::size_t>(reader.get_int("grpc.threads", static_cast<std::int64_t>(config.pool_size), 1, 1000));
  if (config.grpc.enabled && config.grpc.port != 0 && config.grpc.port == config.http.port &&
      config.grpc.listen == config.http.bind_address) {
    throw common::config_error("grpc.port", fmt::format("grpc.port {} is also http.port: give gRPC a port of its own "
                                                        "(9090 by default)",
                                                        config.grpc.port));
  }

  config.enable_deposits = reader.get_bool("api.enable_deposits", false);
  config.require_idempotency_key = reader.get_bool("api.require_idempotency_key", false);

  const auto tokens_file = reader.get_string("auth.tokens_file", "");
  if (!tokens_file.empty()) config.tokens_file = tokens_file;
  config.auth_disabled = reader.get_bool("auth.disabled", false);

  const auto chain_names = reader.table_names("chains");
  if (chain_names.empty()) {
    throw common::config_error("chains",
                               "at least one [chains.<name>] table is required, e.g. [chains.eth] "
                               "with decimals = 18");
  }
  for (const auto& name : chain_names) {
    const std::string prefix = "chains." + name;
    const auto decimals = static_cast<unsigned>(reader.get_int(prefix + ".decimals", 18, 0, 255));
    const auto max_text = reader.get_string(prefix + ".max_amount", "");
    auto rules = make_chain_rules(name, decimals, max_text.empty() ? std::nullopt : std::optional(max_text));
    config.chains.emplace(name, std::move(rules));
  }
  reader.reject_unknown_keys();
  return config;
}

}  // namespace wallet
