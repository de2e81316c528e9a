#include "relay/config.hpp"

#include <charconv>

#include <fmt/format.h>

#include "common/redis.hpp"

namespace relay {

using namespace std::chrono_literals;

std::chrono::milliseconds message_timeout(std::chrono::milliseconds delivery_timeout) {
  return delivery_timeout - std::max<std::chrono::milliseconds>(500ms, delivery_timeout / 10);
}

std::chrono::milliseconds transaction_limit(const outbox_config& outbox) {
  // A session of a working relay is idle inside a claim transaction for at most two batch
  // deadlines: its own batch's collect, then sending the next batch (which may wait for room in
  // the client's queue) before this one is finished.
  return 2 * outbox.delivery_timeout + outbox.lease_timeout;
}

std::map<std::string, std::string> producer_defaults(const relay_config& config) {
  return {
      {"client.id", "outbox-relay"},
      // Ordering per partition across retries needs idempotence; acks=all is implied by it.
      {"enable.idempotence", "true"},
      {"acks", "all"},
      {"compression.type", "lz4"},
      // The relay hands over a whole batch at once, so a short linger already groups it into few
      // requests; collect() flushes, so no row waits for it while its batch is awaited.
      {"linger.ms", "1"},
      // Java-compatible key hashing: Java consumers/producers agree on a key's partition.
      {"partitioner", "murmur2_random"},
      // One batch at a time is in flight; a small queue keeps the resident size bounded.
      {"queue.buffering.max.kbytes", "16384"},
      {"message.timeout.ms", std::to_string(message_timeout(config.outbox.delivery_timeout).count())},
      // A topic the cluster says does not exist fails its messages as unknown_topic (a blocked
      // topic, no row's fault) after this, instead of timing out after message.timeout.ms.
      {"topic.metadata.propagation.max.ms",
       std::to_string(
           std::min<std::chrono::milliseconds>(10s, message_timeout(config.outbox.delivery_timeout) / 2).count())},
      {"socket.keepalive.enable", "true"},
  };
}

namespace {

std::chrono::milliseconds property_ms(const std::map<std::string, std::string>& properties, const std::string& name) {
  const auto it = properties.find(name);
  if (it == properties.end()) return std::chrono::milliseconds(-1);
  long long value = 0;
  const auto& text = it->second;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) {
    throw common::config_error(
        "kafka.properties." + name,
        fmt::format("kafka.properties.{} must be a whole number of milliseconds, got \"{}\"", name, text));
  }
  return std::chrono::milliseconds(value);
}

void check_order(std::chrono::milliseconds low, std::chrono::milliseconds high, const std::string& low_key,
                 const std::string& high_key) {
  if (low > high) {
    throw common::config_error(
        low_key, fmt::format("{} ({}ms) must not exceed {} ({}ms)", low_key, low.count(), high_key, high.count()));
  }
}

}  // namespace

relay_config parse_config(common::config_reader& reader) {
  relay_config config;
  config.log_level = reader.get_log_level(config.log_level);
  config.database = common::parse_database_config(reader, "outbox-relay");
  config.mq = common::parse_mq_type(reader);
  config.kafka = common::kafka::parse_kafka_config(reader);
  config.redis.url = common::redis::parse_url_config(reader, config.mq);
  config.redis.stream_max_len = reader.get_int("redis.stream_max_len", 0, 0, std::int64_t{1} << 40);

  auto& o = config.outbox;
  o.batch_size =
      static_cast<std::size_t>(reader.get_int("outbox.batch_size", static_cast<std::int64_t>(o.batch_size), 1, 10000));
  o.poll_interval = reader.get_duration("outbox.poll_interval", o.poll_interval, 10ms, 1min);
  o.delivery_timeout = reader.get_duration("outbox.delivery_timeout", o.delivery_timeout, 2s, 10min);
  o.max_attempts = static_cast<int>(reader.get_int("outbox.max_attempts", o.max_attempts, 1, 1000));
  o.retry_backoff = reader.get_duration("outbox.retry_backoff", o.retry_backoff, 1ms, 1h);
  o.retry_backoff_max = reader.get_duration("outbox.retry_backoff_max", o.retry_backoff_max, 1ms, 24h);
  o.broker_backoff = reader.get_duration("outbox.broker_backoff", o.broker_backoff, 1ms, 1min);
  o.broker_backoff_max = reader.get_duration("outbox.broker_backoff_max", o.broker_backoff_max, 1ms, 10min);
  o.shutdown_timeout = reader.get_duration("outbox.shutdown_timeout", o.shutdown_timeout, 1s, 10min);
  o.lease_refresh = reader.get_duration("outbox.lease_refresh", o.lease_refresh, 100ms, 1min);
  o.synchronous_commit = reader.get_bool("outbox.synchronous_commit", o.synchronous_commit);
  o.lease_timeout = reader.get_duration("outbox.lease_timeout", o.lease_timeout, 1s, 10min);
  o.dead_letter_blocks_key = reader.get_bool("outbox.dead_letter_blocks_key", o.dead_letter_blocks_key);
  check_order(o.retry_backoff, o.retry_backoff_max, "outbox.retry_backoff", "outbox.retry_backoff_max");
  check_order(o.broker_backoff, o.broker_backoff_max, "outbox.broker_backoff", "outbox.broker_backoff_max");

  config.http = common::http::parse_server_config(reader, 9101);
  config.http.threads = 1;

  reader.reject_unknown_keys();

  if (config.mq == common::mq_type::kafka) {
    // A message must time out inside librdkafka before the batch's deadline: otherwise it could
    // still be in flight after the relay gave its partition to another relay.
    for (const std::string name : {"message.timeout.ms", "delivery.timeout.ms"}) {
      const auto value = property_ms(config.kafka.properties, name);
      if (value >= o.delivery_timeout) {
        throw common::config_error(
            "kafka.properties." + name,
            fmt::format("kafka.properties.{} ({}ms) must be below outbox.delivery_timeout ({}ms); leave it unset to "
                        "get {}ms",
                        name, value.count(), o.delivery_timeout.count(), message_timeout(o.delivery_timeout).count()));
      }
    }
    // Builds (and drops) the producer configuration: librdkafka rejects unknown names and bad values here.
    static_cast<void>(common::kafka::make_conf(config.kafka, producer_defaults(config)));
  }
  return config;
}

relay_config load_config(const std::filesystem::path& path, common::env_lookup env) {
  auto reader = common::config_reader::from_file(path, "RELAY", std::move(env));
  return parse_config(reader);
}

}  // namespace relay
