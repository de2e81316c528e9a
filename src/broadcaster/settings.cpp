#include "broadcaster/settings.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

#include "broadcaster/eth_rpc.hpp"
#include "chain/units.hpp"
#include "common/redis.hpp"

namespace broadcaster {
namespace {

using std::chrono::milliseconds;
using namespace std::chrono_literals;

// "auto" or a whole number of wei.
std::optional<chain::uint256> parse_fee(common::config_reader& reader, std::string_view key) {
  const std::string text = reader.get_string(key, "auto");
  if (text == "auto") return std::nullopt;
  const auto parsed = chain::parse_units(text, 0);
  if (!parsed) {
    throw common::config_error(std::string(key), fmt::format("{} ({}) must be \"auto\" or a whole number of wei such "
                                                             "as \"2000000000\", got \"{}\"",
                                                             key, reader.env_name(key), text));
  }
  return parsed.value;
}

void require_name(const std::string& value, std::string_view key) {
  if (value.empty()) throw common::config_error(std::string(key), fmt::format("{} must not be empty", key));
}

}  // namespace

settings parse_settings(common::config_reader& reader, const common::env_lookup& env) {
  settings s;
  s.log_level = reader.get_log_level(s.log_level);
  s.database = common::parse_database_config(reader, "broadcaster-worker");

  s.source = reader.get_choice("source.mode", "events", {"events", "db-poll"}) == "db-poll" ? source_mode::db_poll
                                                                                            : source_mode::events;
  s.poll_interval = reader.get_duration("source.poll_interval", s.poll_interval, 10ms, 1h);

  s.mq = common::parse_mq_type(reader);
  s.kafka = common::kafka::parse_kafka_config(reader);
  // Offsets move only after processing; automatic storing would move them on receipt.
  if (const auto it = s.kafka.properties.find("enable.auto.offset.store");
      it != s.kafka.properties.end() && it->second != "false") {
    throw common::config_error("kafka.properties.enable.auto.offset.store",
                               "kafka.properties.enable.auto.offset.store must stay false: the worker stores an "
                               "event's offset only after processing it");
  }

  if (s.kafka.properties.contains("sasl.password")) {
    throw common::config_error(
        "kafka.properties.sasl.password",
        "kafka.properties.sasl.password: secrets never sit in the configuration; give the "
        "password in BROADCASTER_KAFKA_SASL_PASSWORD, in a file named by "
        "BROADCASTER_KAFKA_SASL_PASSWORD_FILE, or as the systemd credential kafka-sasl-password");
  }
  if (const auto password = common::read_secret("kafka-sasl-password", "BROADCASTER_KAFKA_SASL_PASSWORD", env);
      !password.empty()) {
    s.kafka.properties["sasl.password"] = password.reveal();
  }

  auto& c = s.consumer;
  c.topic = reader.get_string("consumer.topic", c.topic);
  c.group = reader.get_string("consumer.group", c.group);
  c.dlq_topic = reader.get_string("consumer.dlq_topic", c.dlq_topic);
  require_name(c.topic, "consumer.topic");
  require_name(c.group, "consumer.group");
  require_name(c.dlq_topic, "consumer.dlq_topic");
  if (c.dlq_topic == c.topic) {
    throw common::config_error("consumer.dlq_topic", "consumer.dlq_topic must differ from consumer.topic");
  }
  c.retry_backoff = reader.get_duration("consumer.retry_backoff", c.retry_backoff, 1ms, 1min);
  c.retry_backoff_max = reader.get_duration("consumer.retry_backoff_max", c.retry_backoff_max, 1ms, 10min);
  if (c.retry_backoff_max < c.retry_backoff) {
    throw common::config_error("consumer.retry_backoff_max",
                               "consumer.retry_backoff_max must be at least consumer.retry_backoff");
  }

  auto& r = s.redis;
  r.url = common::redis::parse_url_config(reader, s.mq);
  r.consumer = reader.get_string("redis.consumer", r.consumer);
  r.claim_idle = reader.get_duration("redis.claim_idle", r.claim_idle, 1s, 24h);
  r.block = reader.get_duration("redis.block", r.block, 10ms, 1min);

  auto& ch = s.chain;
  ch.rpc_url = reader.get_string("chain.rpc_url", ch.rpc_url, {"ETH_RPC_URL"});
  try {
    static_cast<void>(parse_rpc_url(ch.rpc_url));
  } catch (const std::invalid_argument& e) {
    throw common::config_error("chain.rpc_url", fmt::format("chain.rpc_url: {}", e.what()));
  }
  ch.chain_id = static_cast<std::uint64_t>(reader.get_int("chain.chain_id", 0, 0, 0x7fffffffffffffff));
  ch.name = reader.get_string("chain.name", ch.name);
  if (ch.name.empty() || ch.name.size() > 32 || !std::all_of(ch.name.begin(), ch.name.end(), [](char ch_) {
        return std::islower(static_cast<unsigned char>(ch_)) || std::isdigit(static_cast<unsigned char>(ch_)) ||
               ch_ == '-' || ch_ == '_';
      })) {
    throw common::config_error("chain.name", fmt::format("chain.name must be 1..32 characters of a-z, 0-9, - or _ "
                                                         "(the withdrawals' chain column), got \"{}\"",
                                                         ch.name));
  }
  ch.tx_type = reader.get_choice("chain.tx_type", "eip1559", {"eip1559", "legacy"}) == "legacy"
                   ? transaction_type::legacy
                   : transaction_type::eip1559;
  ch.gas_limit = static_cast<std::uint64_t>(reader.get_int("chain.gas_limit", 21000, 21000, 30'000'000));
  ch.max_fee_per_gas = parse_fee(reader, "chain.max_fee_per_gas");
  ch.max_priority_fee_per_gas = parse_fee(reader, "chain.max_priority_fee_per_gas");
  if (ch.max_fee_per_gas && *ch.max_fee_per_gas == 0) {
    throw common::config_error("chain.max_fee_per_gas", "chain.max_fee_per_gas must be \"auto\" or above 0");
  }
  if (ch.tx_type == transaction_type::eip1559 && ch.max_fee_per_gas && ch.max_priority_fee_per_gas &&
      *ch.max_priority_fee_per_gas > *ch.max_fee_per_gas) {
    throw common::config_error("chain.max_priority_fee_per_gas",
                               "chain.max_priority_fee_per_gas must not exceed chain.max_fee_per_gas "
                               "(nodes reject such transactions)");
  }
  ch.rpc_timeout = reader.get_duration("chain.rpc_timeout", ch.rpc_timeout, 100ms, 5min);
  ch.confirm_poll_interval = reader.get_duration("chain.confirm_poll_interval", ch.confirm_poll_interval, 10ms, 1h);
  ch.rebroadcast_after = reader.get_duration("chain.rebroadcast_after", ch.rebroadcast_after, 1s, 24h);
  ch.confirmations = static_cast<std::uint64_t>(
      reader.get_int("chain.confirmations", static_cast<std::int64_t>(ch.confirmations), 1, 10'000));
  {
    const std::string cap = reader.get_string("chain.max_fee_per_gas_cap", ch.max_fee_per_gas_cap.str());
    const auto parsed = chain::parse_units(cap, 0);
    if (!parsed || parsed.value == 0) {
      throw common::config_error("chain.max_fee_per_gas_cap",
                                 fmt::format("chain.max_fee_per_gas_cap ({}) must be a whole number of wei above 0 "
                                             "such as \"500000000000\" (500 gwei), got \"{}\"",
                                             reader.env_name("chain.max_fee_per_gas_cap"), cap));
    }
    ch.max_fee_per_gas_cap = parsed.value;
  }
  if (ch.max_fee_per_gas && *ch.max_fee_per_gas > ch.max_fee_per_gas_cap) {
    throw common::config_error("chain.max_fee_per_gas",
                               fmt::format("chain.max_fee_per_gas {} is above chain.max_fee_per_gas_cap {}: raise the "
                                           "cap or lower the fee",
                                           ch.max_fee_per_gas->str(), ch.max_fee_per_gas_cap.str()));
  }
  if (ch.max_priority_fee_per_gas && *ch.max_priority_fee_per_gas > ch.max_fee_per_gas_cap) {
    throw common::config_error("chain.max_priority_fee_per_gas",
                               "chain.max_priority_fee_per_gas must not exceed chain.max_fee_per_gas_cap");
  }

  s.reconcile.pending_after = reader.get_duration("reconcile.pending_after", s.reconcile.pending_after, 1s, 7 * 24h);

  s.http = common::http::parse_server_config(reader, 9102);
  s.http.threads = 1;

  reader.reject_unknown_keys();
  return s;
}

chain::private_key load_signing_key(const common::env_lookup& env) {
  const common::secret key = common::read_secret("signing-key", "BROADCASTER_SIGNING_KEY", env);
  if (key.empty()) {
    throw common::config_error("BROADCASTER_SIGNING_KEY",
                               "BROADCASTER_SIGNING_KEY is not set: give the hot wallet's private key (64 hex digits) "
                               "in BROADCASTER_SIGNING_KEY, in a file named by BROADCASTER_SIGNING_KEY_FILE, or as the "
                               "systemd credential signing-key");
  }
  try {
    return chain::private_key(key.reveal());
  } catch (const std::invalid_argument& e) {
    // chain::private_key never quotes the text in its message.
    throw common::config_error(
        "BROADCASTER_SIGNING_KEY",
        fmt::format("BROADCASTER_SIGNING_KEY is not a valid secp256k1 private key: {}", e.what()));
  }
}

void forget_signing_key_environment() {
  for (const char* name : {"BROADCASTER_SIGNING_KEY", "BROADCASTER_SIGNING_KEY_FILE"}) {
    if (char* value = std::getenv(name); value != nullptr) explicit_bzero(value, std::strlen(value));
    unsetenv(name);
  }
}

std::string default_consumer_name() {
  std::array<char, 256> host{};
  if (gethostname(host.data(), host.size() - 1) != 0) host[0] = '\0';
  const std::string name = host[0] != '\0' ? std::string(host.data()) : std::string("broadcaster");
  return fmt::format("{}-{}", name, getpid());
}

}  // namespace broadcaster
