// wallet-service configuration: defaults, chain rules and the errors that make it exit with code 2.

#include <catch2/catch.hpp>

#include <map>

#include "chain/units.hpp"
#include "wallet/config.hpp"

namespace {

common::env_lookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

wallet::service_config parse(const std::string& toml, std::map<std::string, std::string> env = {}) {
  auto reader = common::config_reader::from_string(toml, "WALLET", env_of(std::move(env)));
  auto config = wallet::parse_config(reader);
  return config;
}

std::string config_error_key(const std::string& toml, std::map<std::string, std::string> env = {}) {
  try {
    parse(toml, std::move(env));
  } catch (const common::config_error& e) {
    return e.key();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("the development config file parses", "[wallet][config]") {
  auto reader = common::config_reader::from_file(OUTBOX_SOURCE_DIR "/conf/wallet.toml", "WALLET", env_of({}));
  const auto config = wallet::parse_config(reader);
  CHECK(config.http.bind_address == "127.0.0.1");
  CHECK(config.enable_deposits);
  CHECK_FALSE(config.tokens_file);
  CHECK(config.auth_disabled);
  CHECK_FALSE(config.require_idempotency_key);
  CHECK(config.grpc.enabled);
  CHECK(config.grpc.listen == "127.0.0.1");
  CHECK(config.grpc.port == 9090);
  REQUIRE(config.chains.contains("eth"));
  CHECK(config.chains.at("eth").decimals == 18);
  CHECK(config.chains.at("eth").max_amount == chain::parse_units("1000000", 18).value);
}

TEST_CASE("the production example parses and is hardened", "[wallet][config]") {
  auto reader =
      common::config_reader::from_file(OUTBOX_SOURCE_DIR "/conf/wallet.production.toml", "WALLET", env_of({}));
  const auto config = wallet::parse_config(reader);
  CHECK(config.http.bind_address == "127.0.0.1");
  CHECK_FALSE(config.enable_deposits);
  CHECK(config.http.threads == config.pool_size);
  CHECK(config.require_idempotency_key);
  CHECK_FALSE(config.auth_disabled);
  CHECK(config.grpc.listen == "127.0.0.1");
}

TEST_CASE("defaults: loopback, deposits off, threads follow the pool", "[wallet][config]") {
  const auto config = parse("[chains.eth]\ndecimals = 18\n[database]\npool_size = 7\n");
  CHECK(config.http.bind_address == "127.0.0.1");
  CHECK(config.http.port == 8080);
  CHECK(config.http.threads == 7);
  CHECK(config.http.body_limit == 64 * 1024);
  CHECK_FALSE(config.enable_deposits);
  CHECK_FALSE(config.require_idempotency_key);
  CHECK_FALSE(config.auth_disabled);  // no tokens then refuses to start (load_tokens)
  CHECK(config.grpc.enabled);
  CHECK(config.grpc.listen == "127.0.0.1");
  CHECK(config.grpc.port == 9090);
  CHECK(config.grpc.max_receive_bytes == 16 * 1024);
  CHECK(config.grpc.threads == 7);
  CHECK(config.pool_size == 7);
  // Without max_amount, the limit is what numeric(78, 18) holds: 60 integer digits.
  CHECK(config.chains.at("eth").max_amount == std::numeric_limits<chain::uint256>::max());
}

TEST_CASE("environment overrides and aliases", "[wallet][config]") {
  const auto config = parse("[chains.eth]\n", {{"WALLET_HTTP_PORT", "0"},
                                               {"DATABASE_URL", "postgresql://u@127.0.0.1:1/db"},
                                               {"WALLET_API_ENABLE_DEPOSITS", "true"},
                                               {"WALLET_AUTH_TOKENS_FILE", "/etc/tokens"},
                                               {"WALLET_CHAINS_ETH_MAX_AMOUNT", "2.5"},
                                               {"WALLET_GRPC_LISTEN", "::1"},
                                               {"WALLET_GRPC_PORT", "0"},
                                               {"WALLET_GRPC_THREADS", "3"},
                                               {"WALLET_API_REQUIRE_IDEMPOTENCY_KEY", "true"},
                                               {"WALLET_AUTH_DISABLED", "true"}});
  CHECK(config.grpc.listen == "::1");
  CHECK(config.grpc.port == 0);
  CHECK(config.grpc.threads == 3);
  CHECK(config.require_idempotency_key);
  CHECK(config.auth_disabled);
  CHECK(config.http.port == 0);
  CHECK(config.database.url == "postgresql://u@127.0.0.1:1/db");
  CHECK(config.enable_deposits);
  CHECK(config.tokens_file == std::filesystem::path("/etc/tokens"));
  CHECK(config.chains.at("eth").max_amount == chain::parse_units("2.5", 18).value);
}

TEST_CASE("configuration errors name the key", "[wallet][config]") {
  CHECK(config_error_key("[chains.eth]\n[http]\nlisten = \"localhost\"\n") == "http.listen");
  CHECK(config_error_key("[chains.eth]\n[http]\nport = 70000\n") == "http.port");
  CHECK(config_error_key("[chains.eth]\n", {{"WALLET_HTTP_PORT", "eighty"}}) == "WALLET_HTTP_PORT");
  CHECK(config_error_key("[chains.eth]\ndecimals = 19\n") == "chains.eth.decimals");
  CHECK(config_error_key("[chains.eth]\nmax_amount = \"0\"\n") == "chains.eth.max_amount");
  CHECK(config_error_key("[chains.eth]\nmax_amount = \"1e3\"\n") == "chains.eth.max_amount");
  CHECK(config_error_key("[chains.ETH]\n") == "chains.ETH");
  CHECK(config_error_key("chains = 1\n") == "chains");
  CHECK(config_error_key("[api]\nenable_deposits = true\n") == "chains");
  CHECK(config_error_key("[chains.eth]\n[api]\nenable_deposit = true\n") == "api.enable_deposit");
  CHECK(config_error_key("[chains.eth]\n[database]\npool_size = 0\n") == "database.pool_size");
  CHECK(config_error_key("[chains.eth]\n[log]\nlevel = \"loud\"\n") == "log.level");
  CHECK(config_error_key("[chains.eth]\n[grpc]\nlisten = \"localhost\"\n") == "grpc.listen");
  CHECK(config_error_key("[chains.eth]\n[grpc]\nport = 65536\n") == "grpc.port");
  CHECK(config_error_key("[chains.eth]\n[grpc]\nport = 8080\n") == "grpc.port");  // http.port's
  CHECK(config_error_key("[chains.eth]\n[grpc]\nthreads = 0\n") == "grpc.threads");
  CHECK(config_error_key("[chains.eth]\n", {{"WALLET_GRPC_ENABLED", "maybe"}}) == "WALLET_GRPC_ENABLED");
  CHECK(config_error_key("[chains.eth]\n[auth]\ndisabled = \"yes\"\n") == "auth.disabled");
  CHECK(config_error_key("[chains.eth]\n[api]\nrequire_idempotency_key = 1\n") == "api.require_idempotency_key");
}
