#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "broadcaster/settings.hpp"
#include "chain/units.hpp"
#include "common/config.hpp"

namespace {

using namespace std::chrono_literals;
using broadcaster::parse_settings;

common::env_lookup env_of(std::map<std::string, std::string> values) {
  return [values = std::move(values)](const std::string& name) -> std::optional<std::string> {
    if (auto it = values.find(name); it != values.end()) return it->second;
    return std::nullopt;
  };
}

broadcaster::settings parse(std::string_view toml, std::map<std::string, std::string> env = {}) {
  const auto lookup = env_of(std::move(env));
  auto reader = common::config_reader::from_string(toml, "BROADCASTER", lookup);
  auto s = parse_settings(reader, lookup);
  reader.reject_unknown_keys();
  return s;
}

std::string config_error_key(std::string_view toml, std::map<std::string, std::string> env = {}) {
  try {
    parse(toml, std::move(env));
  } catch (const common::config_error& e) {
    return e.key();
  }
  return "(no error)";
}

constexpr const char* anvil_key_1 = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

}  // namespace

TEST_CASE("the shipped development config parses with the documented defaults", "[settings]") {
  const auto path = std::filesystem::path(OUTBOX_SOURCE_DIR) / "conf" / "broadcaster.toml";
  auto reader = common::config_reader::from_file(path, "BROADCASTER", env_of({}));
  const auto s = parse_settings(reader, env_of({}));
  REQUIRE_NOTHROW(reader.reject_unknown_keys());
  CHECK(s.chain.confirmations == 1);
  CHECK(s.chain.max_fee_per_gas_cap == chain::uint256("1000000000000"));
  CHECK(s.reconcile.pending_after == 5min);
  CHECK(s.source == broadcaster::source_mode::events);
  CHECK(s.poll_interval == 5s);
  CHECK(s.mq == common::mq_type::kafka);
  CHECK(s.consumer.topic == "wallet_events_withdrawal");
  CHECK(s.consumer.group == "broadcaster-worker");
  CHECK(s.consumer.dlq_topic == "wallet_events_withdrawal.dlq");
  CHECK(s.consumer.retry_backoff == 250ms);
  CHECK(s.consumer.retry_backoff_max == 10s);
  CHECK(s.redis.claim_idle == 30s);
  CHECK(s.redis.block == 1s);
  CHECK(s.redis.consumer.empty());
  CHECK(s.chain.chain_id == 0);
  CHECK(s.chain.name == "eth");
  CHECK(s.chain.tx_type == broadcaster::transaction_type::eip1559);
  CHECK(s.chain.gas_limit == 21000);
  CHECK_FALSE(s.chain.max_fee_per_gas.has_value());
  CHECK_FALSE(s.chain.max_priority_fee_per_gas.has_value());
  CHECK(s.chain.rpc_timeout == 5s);
  CHECK(s.chain.confirm_poll_interval == 1s);
  CHECK(s.chain.rebroadcast_after == 30s);
  CHECK(s.http.port == 9102);
}

TEST_CASE("the production example parses and pins the chain and a fee ceiling", "[settings]") {
  const auto path = std::filesystem::path(OUTBOX_SOURCE_DIR) / "conf" / "broadcaster.production.toml";
  auto reader = common::config_reader::from_file(path, "BROADCASTER", env_of({}));
  const auto s = parse_settings(reader, env_of({}));
  REQUIRE_NOTHROW(reader.reject_unknown_keys());
  CHECK(s.chain.confirmations == 12);
  CHECK(s.chain.max_fee_per_gas_cap == chain::uint256("300000000000"));
  CHECK(s.chain.chain_id == 1);
  REQUIRE(s.chain.max_fee_per_gas.has_value());
  CHECK(*s.chain.max_fee_per_gas == chain::uint256("200000000000"));
}

TEST_CASE("environment variables and the seed's aliases override the file", "[settings]") {
  const auto s =
      parse("[mq]\ntype = \"kafka\"\n[chain]\nname = \"eth\"\n", {{"REDIS_MQ_TYPE", "redis"},
                                                                  {"ETH_RPC_URL", "http://10.0.0.5:8545/rpc"},
                                                                  {"REDIS_URL", "redis://10.0.0.6:6379/2"},
                                                                  {"BROADCASTER_SOURCE_MODE", "db-poll"},
                                                                  {"BROADCASTER_SOURCE_POLL_INTERVAL", "250ms"},
                                                                  {"BROADCASTER_CONSUMER_GROUP", "g2"},
                                                                  {"BROADCASTER_CHAIN_MAX_FEE_PER_GAS", "3000000000"},
                                                                  {"BROADCASTER_CHAIN_TX_TYPE", "legacy"}});
  CHECK(s.mq == common::mq_type::redis);
  CHECK(s.chain.rpc_url == "http://10.0.0.5:8545/rpc");
  CHECK(s.redis.url == "redis://10.0.0.6:6379/2");
  CHECK(s.source == broadcaster::source_mode::db_poll);
  CHECK(s.poll_interval == 250ms);
  CHECK(s.consumer.group == "g2");
  CHECK(s.chain.tx_type == broadcaster::transaction_type::legacy);
  REQUIRE(s.chain.max_fee_per_gas.has_value());
  CHECK(*s.chain.max_fee_per_gas == 3'000'000'000U);
  // BROADCASTER_MQ_TYPE wins over the alias.
  CHECK(parse("", {{"REDIS_MQ_TYPE", "redis"}, {"BROADCASTER_MQ_TYPE", "kafka"}}).mq == common::mq_type::kafka);
}

TEST_CASE("bad values are config errors naming the key", "[settings]") {
  CHECK(config_error_key("[source]\nmode = \"stream\"\n") == "source.mode");
  CHECK(config_error_key("[mq]\ntype = \"rabbit\"\n") == "mq.type");
  CHECK(config_error_key("", {{"REDIS_MQ_TYPE", "nats"}}) == "REDIS_MQ_TYPE");
  CHECK(config_error_key("[chain]\nrpc_url = \"https://node:8545\"\n") == "chain.rpc_url");
  CHECK(config_error_key("[chain]\nrpc_url = \"node:8545\"\n") == "chain.rpc_url");
  CHECK(config_error_key("[chain]\ntx_type = \"eip4844\"\n") == "chain.tx_type");
  CHECK(config_error_key("[chain]\ngas_limit = 20000\n") == "chain.gas_limit");
  CHECK(config_error_key("[chain]\nmax_fee_per_gas = \"1.5\"\n") == "chain.max_fee_per_gas");
  CHECK(config_error_key("[chain]\nmax_fee_per_gas = \"0\"\n") == "chain.max_fee_per_gas");
  CHECK(config_error_key("[chain]\nmax_fee_per_gas = \"10\"\nmax_priority_fee_per_gas = \"11\"\n") ==
        "chain.max_priority_fee_per_gas");
  CHECK(config_error_key("[chain]\nname = \"ETH main\"\n") == "chain.name");
  CHECK(config_error_key("[chain]\nrpc_timeout = \"5\"\n") == "chain.rpc_timeout");
  CHECK(config_error_key("[consumer]\ndlq_topic = \"wallet_events_withdrawal\"\n") == "consumer.dlq_topic");
  CHECK(config_error_key("[consumer]\nretry_backoff = \"2s\"\nretry_backoff_max = \"1s\"\n") ==
        "consumer.retry_backoff_max");
  CHECK(config_error_key("[mq]\ntype = \"redis\"\n[redis]\nurl = \"http://x\"\n") == "redis.url");
  CHECK(config_error_key("[http]\nport = 70000\n") == "http.port");
  CHECK(config_error_key("[chain]\nsigning_key = \"abc\"\n") == "chain.signing_key");  // never in TOML
  CHECK(config_error_key("[chain]\nconfirmations = 0\n") == "chain.confirmations");
  CHECK(config_error_key("[chain]\nmax_fee_per_gas_cap = \"0\"\n") == "chain.max_fee_per_gas_cap");
  CHECK(config_error_key("[chain]\nmax_fee_per_gas_cap = \"auto\"\n") == "chain.max_fee_per_gas_cap");
  CHECK(config_error_key("[chain]\nmax_fee_per_gas = \"11\"\nmax_fee_per_gas_cap = \"10\"\n") ==
        "chain.max_fee_per_gas");
  CHECK(config_error_key("[reconcile]\npending_after = \"0s\"\n") == "reconcile.pending_after");
  // Secrets never sit in the configuration, not even as a librdkafka pass-through property.
  CHECK(config_error_key("[kafka.properties]\n\"sasl.password\" = \"x\"\n") == "kafka.properties.sasl.password");
  CHECK(config_error_key("", {{"BROADCASTER_KAFKA_PROPERTIES", "sasl.password=x"}}) ==
        "kafka.properties.sasl.password");
}

TEST_CASE("the Kafka SASL password comes from the environment or a file, like the other secrets", "[settings]") {
  CHECK(parse("", {{"BROADCASTER_KAFKA_SASL_PASSWORD", "s3cret"}}).kafka.properties.at("sasl.password") == "s3cret");
  const auto path = std::filesystem::temp_directory_path() / ("sasl-" + std::to_string(getpid()));
  std::ofstream(path) << "from-file\n";
  CHECK(parse("", {{"BROADCASTER_KAFKA_SASL_PASSWORD_FILE", path.string()}}).kafka.properties.at("sasl.password") ==
        "from-file");
  std::filesystem::remove(path);
  CHECK_FALSE(parse("").kafka.properties.contains("sasl.password"));
}

TEST_CASE("the signing key is wiped from the process environment once read", "[settings]") {
  setenv("BROADCASTER_SIGNING_KEY", anvil_key_1, 1);
  char* value = std::getenv("BROADCASTER_SIGNING_KEY");
  REQUIRE(value != nullptr);
  const std::size_t length = std::strlen(value);
  CHECK_NOTHROW(broadcaster::load_signing_key());
  broadcaster::forget_signing_key_environment();
  CHECK(std::getenv("BROADCASTER_SIGNING_KEY") == nullptr);
  // setenv copied the value; the copy is zeroed in place, as the original environment block is.
  CHECK(std::all_of(value, value + length, [](char c) { return c == '\0'; }));
}

TEST_CASE("a legacy fee ceiling may be below the (unused) priority fee", "[settings]") {
  const auto s = parse("[chain]\ntx_type = \"legacy\"\nmax_fee_per_gas = \"10\"\nmax_priority_fee_per_gas = \"11\"\n");
  CHECK(s.chain.tx_type == broadcaster::transaction_type::legacy);
}

TEST_CASE("the signing key comes from the environment, a file or a systemd credential", "[settings]") {
  const auto expected = chain::private_key(anvil_key_1).address();
  SECTION("BROADCASTER_SIGNING_KEY") {
    CHECK(broadcaster::load_signing_key(env_of({{"BROADCASTER_SIGNING_KEY", anvil_key_1}})).address() == expected);
  }
  SECTION("BROADCASTER_SIGNING_KEY_FILE, trailing newline stripped") {
    const auto path = std::filesystem::temp_directory_path() / ("bcast_key_" + std::to_string(::getpid()));
    std::ofstream(path) << anvil_key_1 << "\n";
    CHECK(broadcaster::load_signing_key(env_of({{"BROADCASTER_SIGNING_KEY_FILE", path.string()}})).address() ==
          expected);
    std::filesystem::remove(path);
  }
  SECTION("credential signing-key in $CREDENTIALS_DIRECTORY") {
    const auto dir = std::filesystem::temp_directory_path() / ("bcast_cred_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "signing-key") << anvil_key_1;
    CHECK(broadcaster::load_signing_key(env_of({{"CREDENTIALS_DIRECTORY", dir.string()}})).address() == expected);
    std::filesystem::remove_all(dir);
  }
}

TEST_CASE("a missing or invalid signing key names BROADCASTER_SIGNING_KEY and never echoes the value", "[settings]") {
  try {
    static_cast<void>(broadcaster::load_signing_key(env_of({})));
    FAIL("no error");
  } catch (const common::config_error& e) {
    CHECK(e.key() == "BROADCASTER_SIGNING_KEY");
  }
  const std::string bad = "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b7869zz";
  try {
    static_cast<void>(broadcaster::load_signing_key(env_of({{"BROADCASTER_SIGNING_KEY", bad}})));
    FAIL("no error");
  } catch (const common::config_error& e) {
    CHECK(e.key() == "BROADCASTER_SIGNING_KEY");
    CHECK(std::string(e.what()).find(bad) == std::string::npos);
    CHECK(std::string(e.what()).find("59c6995e") == std::string::npos);
  }
}

TEST_CASE("kafka.properties cannot turn automatic offset storing back on", "[settings]") {
  CHECK(config_error_key("[kafka.properties]\n\"enable.auto.offset.store\" = \"true\"\n") ==
        "kafka.properties.enable.auto.offset.store");
  CHECK_NOTHROW(parse("[kafka.properties]\n\"max.poll.interval.ms\" = \"600000\"\n"));
}
