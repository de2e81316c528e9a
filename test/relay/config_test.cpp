// relay::parse_config: defaults, environment overrides, and config_error naming the key at fault.

#include <catch2/catch.hpp>

#include <map>
#include <optional>
#include <string>

#include "relay/config.hpp"

namespace {

using namespace std::chrono_literals;

common::env_lookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    if (auto it = vars.find(name); it != vars.end()) return it->second;
    return std::nullopt;
  };
}

relay::relay_config parse(const std::string& toml, std::map<std::string, std::string> env = {}) {
  auto reader = common::config_reader::from_string(toml, "RELAY", env_of(std::move(env)));
  return relay::parse_config(reader);
}

// The key a config_error names, or "" when parsing succeeded.
std::string failing_key(const std::string& toml, std::map<std::string, std::string> env = {}) {
  try {
    parse(toml, std::move(env));
  } catch (const common::config_error& e) {
    return e.key();
  }
  return "";
}

}  // namespace

TEST_CASE("relay config: an empty file gives the documented defaults", "[relay][config]") {
  const auto c = parse("");
  CHECK(c.log_level == "info");
  CHECK(c.mq == common::mq_type::kafka);
  CHECK(c.outbox.batch_size == 1000);
  CHECK(c.outbox.poll_interval == 1s);
  CHECK(c.outbox.delivery_timeout == 30s);
  CHECK(c.outbox.max_attempts == 5);
  CHECK(c.outbox.retry_backoff == 1s);
  CHECK(c.outbox.retry_backoff_max == 60s);
  CHECK(c.outbox.broker_backoff == 250ms);
  CHECK(c.outbox.broker_backoff_max == 10s);
  CHECK(c.outbox.shutdown_timeout == 20s);
  CHECK(c.outbox.lease_refresh == 2s);
  CHECK_FALSE(c.outbox.synchronous_commit);
  CHECK(c.outbox.lease_timeout == 15s);
  CHECK(c.outbox.dead_letter_blocks_key);
  CHECK(relay::transaction_limit(c.outbox) == 75s);
  CHECK(c.redis.stream_max_len == 0);
  CHECK(c.http.bind_address == "127.0.0.1");
  CHECK(c.http.port == 9101);
}

TEST_CASE("relay config: the shipped files parse", "[relay][config]") {
  for (const char* file : {"/conf/relay.toml", "/conf/relay.production.toml"}) {
    INFO(file);
    const auto c = relay::load_config(std::string(OUTBOX_SOURCE_DIR) + file, env_of({}));
    CHECK(c.outbox.batch_size >= 1);
  }
}

TEST_CASE("relay config: environment overrides and the shared aliases win over the file", "[relay][config]") {
  const auto c = parse("[outbox]\nbatch_size = 100\n[mq]\ntype = \"kafka\"\n",
                       {{"RELAY_OUTBOX_BATCH_SIZE", "42"},
                        {"REDIS_MQ_TYPE", "redis"},
                        {"REDIS_URL", "redis://10.0.0.1:6380/2"},
                        {"KAFKA_BOOTSTRAP_SERVERS", "k1:9092,k2:9092"},
                        {"RELAY_KAFKA_PROPERTIES", "linger.ms=20;compression.type=zstd"},
                        {"RELAY_OUTBOX_POLL_INTERVAL", "250ms"},
                        {"RELAY_HTTP_PORT", "0"}});
  CHECK(c.outbox.batch_size == 42);
  CHECK(c.mq == common::mq_type::redis);
  CHECK(c.redis.url == "redis://10.0.0.1:6380/2");
  CHECK(c.kafka.bootstrap_servers == "k1:9092,k2:9092");
  CHECK(c.kafka.properties.at("linger.ms") == "20");
  CHECK(c.outbox.poll_interval == 250ms);
  CHECK(c.http.port == 0);
  // RELAY_MQ_TYPE beats the REDIS_MQ_TYPE alias.
  CHECK(parse("", {{"RELAY_MQ_TYPE", "kafka"}, {"REDIS_MQ_TYPE", "redis"}}).mq == common::mq_type::kafka);
}

TEST_CASE("relay config: [kafka.properties] override the producer defaults", "[relay][config]") {
  const auto c = parse("[kafka.properties]\n\"linger.ms\" = \"50\"\n\"acks\" = \"all\"\n");
  const auto defaults = relay::producer_defaults(c);
  CHECK(defaults.at("enable.idempotence") == "true");
  CHECK(defaults.at("acks") == "all");
  CHECK(defaults.at("compression.type") == "lz4");
  CHECK(defaults.at("partitioner") == "murmur2_random");
  CHECK(defaults.at("message.timeout.ms") == "27000");
  CHECK(c.kafka.properties.at("linger.ms") == "50");
}

TEST_CASE("relay config: message.timeout.ms stays below delivery_timeout", "[relay][config]") {
  CHECK(relay::message_timeout(30s) == 27s);
  CHECK(relay::message_timeout(2s) == 1500ms);
  CHECK(relay::message_timeout(10min) == 9min);
  const auto c = parse("[outbox]\ndelivery_timeout = \"5s\"\n");
  CHECK(relay::producer_defaults(c).at("message.timeout.ms") == "4500");
}

// Pins: a typo or an out-of-range value starting the relay with a default instead of exit 2, or an
// error that does not say which key to fix.
TEST_CASE("relay config: bad values are config errors naming the key", "[relay][config]") {
  CHECK(failing_key("[outbox]\nbatch_size = 0\n") == "outbox.batch_size");
  CHECK(failing_key("[outbox]\nbatch_size = 10001\n") == "outbox.batch_size");
  CHECK(failing_key("", {{"RELAY_OUTBOX_BATCH_SIZE", "lots"}}) == "RELAY_OUTBOX_BATCH_SIZE");
  CHECK(failing_key("[outbox]\nbatch_sise = 10\n") == "outbox.batch_sise");
  CHECK(failing_key("unknown_knob = true\n") == "unknown_knob");
  CHECK(failing_key("[mq]\ntype = \"rabbitmq\"\n") == "mq.type");
  CHECK(failing_key("", {{"REDIS_MQ_TYPE", "nats"}}) == "REDIS_MQ_TYPE");
  CHECK(failing_key("[outbox]\npoll_interval = \"1 second\"\n") == "outbox.poll_interval");
  CHECK(failing_key("[outbox]\ndelivery_timeout = \"1s\"\n") == "outbox.delivery_timeout");
  CHECK(failing_key("[outbox]\nmax_attempts = 0\n") == "outbox.max_attempts");
  CHECK(failing_key("[outbox]\nretry_backoff = \"2m\"\nretry_backoff_max = \"1m\"\n") == "outbox.retry_backoff");
  CHECK(failing_key("[outbox]\nbroker_backoff = \"20s\"\n") == "outbox.broker_backoff");
  CHECK(failing_key("[http]\nport = 70000\n") == "http.port");
  CHECK(failing_key("[log]\nlevel = \"verbose\"\n") == "log.level");
  CHECK(failing_key("[database]\nurl = \"mysql://x\"\n") == "database.url");
  CHECK(failing_key("[kafka]\nbrokers = \"\"\n") == "kafka.brokers");
  CHECK(failing_key("[kafka.properties]\n\"message.timeout.ms\" = \"30000\"\n") ==
        "kafka.properties.message.timeout.ms");
  CHECK(failing_key("[kafka.properties]\n\"delivery.timeout.ms\" = \"60000\"\n") ==
        "kafka.properties.delivery.timeout.ms");
  CHECK(failing_key("[kafka.properties]\n\"linger.ms\" = \"soon\"\n") == "kafka.properties.linger.ms");
  CHECK(failing_key("[kafka.properties]\n\"no.such.property\" = \"1\"\n") == "kafka.properties.no.such.property");
  CHECK(failing_key("[mq]\ntype = \"redis\"\n[redis]\nurl = \"http://localhost\"\n") == "redis.url");
  CHECK(failing_key("[redis]\nstream_max_len = -1\n") == "redis.stream_max_len");
}

TEST_CASE("relay config: the message of an error says what is expected", "[relay][config]") {
  try {
    parse("[outbox]\nbatch_size = 0\n");
    FAIL("batch_size 0 was accepted");
  } catch (const common::config_error& e) {
    CHECK_THAT(e.what(),
               Catch::Contains("outbox.batch_size") && Catch::Contains("1..10000") && Catch::Contains("got 0"));
  }
}

TEST_CASE("relay config: outbox.synchronous_commit is a boolean, from the file or RELAY_OUTBOX_SYNCHRONOUS_COMMIT",
          "[relay][config]") {
  CHECK(parse("[outbox]\nsynchronous_commit = true\n").outbox.synchronous_commit);
  CHECK(parse("", {{"RELAY_OUTBOX_SYNCHRONOUS_COMMIT", "true"}}).outbox.synchronous_commit);
  CHECK(failing_key("[outbox]\nsynchronous_commit = \"sometimes\"\n") == "outbox.synchronous_commit");
  CHECK(failing_key("", {{"RELAY_OUTBOX_SYNCHRONOUS_COMMIT", "sometimes"}}) == "RELAY_OUTBOX_SYNCHRONOUS_COMMIT");
}

// Pins: the freeze bound or the dead-letter policy not settable from the environment, or a bound
// below a second that would end working relays' sessions.
TEST_CASE("relay config: lease_timeout and dead_letter_blocks_key from TOML and the environment", "[relay][config]") {
  const auto c = parse("[outbox]\nlease_timeout = \"5s\"\ndead_letter_blocks_key = false\n");
  CHECK(c.outbox.lease_timeout == 5s);
  CHECK_FALSE(c.outbox.dead_letter_blocks_key);
  const auto e = parse("", {{"RELAY_OUTBOX_LEASE_TIMEOUT", "2s"}, {"RELAY_OUTBOX_DEAD_LETTER_BLOCKS_KEY", "false"}});
  CHECK(e.outbox.lease_timeout == 2s);
  CHECK_FALSE(e.outbox.dead_letter_blocks_key);
  CHECK(failing_key("[outbox]\nlease_timeout = \"500ms\"\n") == "outbox.lease_timeout");
  CHECK(failing_key("[outbox]\ndead_letter_blocks_key = \"maybe\"\n") == "outbox.dead_letter_blocks_key");
}
