#pragma once
// Kafka publisher on librdkafka: an idempotent producer, one delivery report per message,
// each classified as persisted, rejected (the message's fault), blocked (its topic's or the
// cluster's, for now) or failed (the broker did not answer in time).

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/kafka.hpp"
#include "relay/config.hpp"
#include "relay/publisher.hpp"

namespace relay {

/// What a librdkafka error code (rd_kafka_resp_err_t as int) means for the row: `rejected` for
/// errors of the message itself that retrying it unchanged will not fix (size limits, invalid
/// record, invalid topic name); `blocked` for errors of its whole topic or of the cluster (unknown
/// topic or partition, topic/cluster authorization, not enough replicas, no leader, storage
/// error); `failed` for everything else (timeouts, transport, all brokers down, purged).
/// `persisted` for RD_KAFKA_RESP_ERR_NO_ERROR.
delivery_status classify_kafka_error(int error_code) noexcept;

/// The metric label for an error code: librdkafka's name lower-cased without a leading
/// underscore, e.g. "msg_size_too_large", "msg_timed_out".
std::string kafka_error_reason(int error_code);

/// A Kafka header: name and value (nullopt: a header without a value).
using kafka_header = std::pair<std::string, std::optional<std::string>>;

/// The Kafka headers of a row's headers column: each member of the JSON object (string values as
/// they are, null as a header without a value, anything else as its JSON text), except an
/// `outbox-id` member: the publisher adds its own, the row id in decimal, after them. Throws
/// std::invalid_argument when `headers_json` is not a JSON object.
std::vector<kafka_header> kafka_headers(const std::string& headers_json);

class kafka_publisher final : public publisher {
 public:
  /// Creates the producer with producer_defaults(config) and [kafka.properties].
  /// Throws common::config_error when librdkafka refuses the configuration.
  explicit kafka_publisher(const relay_config& config);
  ~kafka_publisher() override;
  kafka_publisher(const kafka_publisher&) = delete;
  kafka_publisher& operator=(const kafka_publisher&) = delete;

  std::string_view mode() const noexcept override { return "Kafka"; }
  void send(std::span<const outbox_row> rows, std::chrono::steady_clock::time_point deadline,
            const std::function<bool()>& keep_waiting) override;
  std::vector<delivery_result> collect(std::chrono::steady_clock::time_point deadline,
                                       const std::function<bool()>& keep_waiting) override;
  bool reachable(std::chrono::milliseconds timeout) override;
  void refresh_topics(std::span<const std::string> topics) override;
  std::optional<std::string> connectivity_problem() override;
  std::size_t close(std::chrono::milliseconds timeout) override;

 private:
  struct batch_state;
  // librdkafka callbacks; they run on the relay thread inside rd_kafka_poll()/rd_kafka_flush().
  static void on_delivery(rd_kafka_s* client, const rd_kafka_message_s* message, void* opaque);
  static void on_error(rd_kafka_s* client, int error_code, const char* reason, void* opaque);

  void create_producer();
  void recreate_if_fatal();
  /// kafka_headers(headers_json), remembered for the next row: rows of one kind mostly carry the
  /// same headers text.
  const std::vector<kafka_header>& headers_of(const std::string& headers_json);

  relay_config config_;
  common::kafka::handle producer_;
  std::unique_ptr<batch_state> batch_;
  std::optional<std::pair<std::string, std::vector<kafka_header>>> last_headers_;  // (json, parsed)
};

}  // namespace relay
