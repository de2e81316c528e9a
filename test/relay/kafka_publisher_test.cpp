// relay::kafka_publisher against librdkafka's in-process mock cluster: fault injection pins how
// every delivery outcome is classified (persisted / rejected for good / blocked topic / failed for
// now), that a
// synchronous failure holds back later rows of its key, and that publish() keeps its deadline.

#include <catch2/catch.hpp>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <algorithm>
#include <memory>

#include "common/kafka.hpp"
#include "relay/kafka_publisher.hpp"

namespace {

using namespace std::chrono_literals;
using relay::delivery_status;
using clock_type = std::chrono::steady_clock;

constexpr std::int16_t produce_api_key = 0;  // Kafka protocol ApiKey of ProduceRequest

struct mock_cluster_deleter {
  void operator()(rd_kafka_mock_cluster_t* cluster) const noexcept { rd_kafka_mock_cluster_destroy(cluster); }
};

// A one-broker mock cluster, hosted by a client handle of its own.
class mock_kafka {
 public:
  mock_kafka() {
    common::kafka::kafka_config config;
    config.bootstrap_servers = "127.0.0.1:1";  // never contacted: this handle only hosts the cluster
    host_ = common::kafka::make_producer(common::kafka::make_conf(config, {{"log_level", "0"}}));
    cluster_.reset(rd_kafka_mock_cluster_new(host_.get(), 1));
    REQUIRE(cluster_);
  }
  rd_kafka_mock_cluster_t* get() const noexcept { return cluster_.get(); }
  std::string bootstraps() const { return rd_kafka_mock_cluster_bootstraps(cluster_.get()); }

 private:
  common::kafka::handle host_;  // declared first: destroyed after the cluster it hosts
  std::unique_ptr<rd_kafka_mock_cluster_t, mock_cluster_deleter> cluster_;
};

relay::relay_config config_for(const mock_kafka& kafka, std::chrono::milliseconds delivery_timeout = 5s) {
  relay::relay_config config;
  config.kafka.bootstrap_servers = kafka.bootstraps();
  config.kafka.properties = {{"retry.backoff.ms", "50"}, {"log_level", "0"}};
  config.outbox.delivery_timeout = delivery_timeout;
  return config;
}

relay::outbox_row row(std::int64_t id, std::optional<std::string> key, std::size_t payload_size = 16,
                      std::string topic = "relay_unit") {
  relay::outbox_row r;
  r.id = id;
  r.topic = std::move(topic);
  r.key = std::move(key);
  r.payload = std::string(payload_size, 'x');
  r.headers = R"({"type": "WithdrawalCreated"})";
  return r;
}

const auto always = [] { return true; };

std::vector<delivery_status> statuses(const std::vector<relay::delivery_result>& results) {
  std::vector<delivery_status> out;
  for (const auto& r : results) out.push_back(r.status);
  return out;
}

}  // namespace

// Pins: a topic-wide or cluster-wide refusal (a topic not created yet, an ACL, too few replicas)
// counted against each row, which dead-letters the whole backlog during one operator mistake.
TEST_CASE("kafka errors: classification of broker and client error codes", "[relay][kafka]") {
  CHECK(relay::classify_kafka_error(RD_KAFKA_RESP_ERR_NO_ERROR) == delivery_status::persisted);
  for (const auto code : {RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE,
                          RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE, RD_KAFKA_RESP_ERR_INVALID_RECORD,
                          RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP, RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION}) {
    INFO(rd_kafka_err2name(code));
    CHECK(relay::classify_kafka_error(code) == delivery_status::rejected);
  }
  for (const auto code :
       {RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC, RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION,
        RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED,
        RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION}) {
    INFO(rd_kafka_err2name(code));
    CHECK(relay::classify_kafka_error(code) == delivery_status::blocked);
  }
  for (const auto code :
       {RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, RD_KAFKA_RESP_ERR__TRANSPORT, RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN,
        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR__TIMED_OUT, RD_KAFKA_RESP_ERR__QUEUE_FULL,
        RD_KAFKA_RESP_ERR__PURGE_INFLIGHT, RD_KAFKA_RESP_ERR__FATAL}) {
    INFO(rd_kafka_err2name(code));
    CHECK(relay::classify_kafka_error(code) == delivery_status::failed);
  }
  CHECK(relay::kafka_error_reason(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) == "msg_size_too_large");
  CHECK(relay::kafka_error_reason(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT) == "msg_timed_out");
}

TEST_CASE("kafka headers: the row's object, without an outbox-id of its own", "[relay][kafka]") {
  const auto headers = relay::kafka_headers(
      R"({"type": "WithdrawalCreated", "traceparent": "00-ab-cd-01", "n": 5, "none": null, "outbox-id": "spoofed"})");
  std::map<std::string, std::optional<std::string>> by_name(headers.begin(), headers.end());
  CHECK(by_name.size() == headers.size());
  CHECK(by_name.at("type") == "WithdrawalCreated");
  CHECK(by_name.at("traceparent") == "00-ab-cd-01");
  CHECK(by_name.at("n") == "5");
  CHECK_FALSE(by_name.at("none").has_value());
  CHECK_FALSE(by_name.contains("outbox-id"));  // the publisher adds the row's id
  CHECK(relay::kafka_headers("{}").empty());
  CHECK_THROWS_AS(relay::kafka_headers("[1,2]"), std::invalid_argument);
}

TEST_CASE("kafka publisher: a healthy broker acknowledges every row", "[relay][kafka][mock]") {
  mock_kafka kafka;
  relay::kafka_publisher publisher(config_for(kafka));
  CHECK(publisher.mode() == "Kafka");
  CHECK(publisher.reachable(5s));
  std::vector<relay::outbox_row> rows;
  for (int i = 1; i <= 50; ++i)
    rows.push_back(row(i, i % 3 == 0 ? std::nullopt : std::optional("k" + std::to_string(i % 5))));
  const auto results = publisher.publish(rows, clock_type::now() + 5s, always);
  REQUIRE(results.size() == rows.size());
  for (const auto& r : results) {
    INFO(r.error);
    CHECK(r.status == delivery_status::persisted);
  }
  CHECK(publisher.close(1s) == 0);
}

// Pins: an oversized record retried forever (it must count as an attempt), or a later row of its
// key sent ahead of it while it waits for its retry.
TEST_CASE("kafka publisher: MSG_SIZE_TOO_LARGE from the client rejects the row and holds back its key",
          "[relay][kafka][mock]") {
  mock_kafka kafka;
  relay::kafka_publisher publisher(config_for(kafka));
  const std::vector<relay::outbox_row> rows = {row(1, "a"), row(2, "b", 2 * 1024 * 1024), row(3, "a"), row(4, "b"),
                                               row(5, std::nullopt)};
  const auto results = publisher.publish(rows, clock_type::now() + 5s, always);
  CHECK(statuses(results) == std::vector<delivery_status>{delivery_status::persisted, delivery_status::rejected,
                                                          delivery_status::persisted, delivery_status::held_back,
                                                          delivery_status::persisted});
  CHECK(results[1].reason == "msg_size_too_large");
  CHECK_THAT(results[1].error, Catch::Contains("size"));
}

TEST_CASE("kafka publisher: broker-side rejections are permanent, retriable errors are retried",
          "[relay][kafka][mock]") {
  mock_kafka kafka;
  relay::kafka_publisher publisher(config_for(kafka));
  REQUIRE(publisher.publish(std::vector{row(1, "warm-up")}, clock_type::now() + 5s, always)[0].status ==
          delivery_status::persisted);

  SECTION("MSG_SIZE_TOO_LARGE from the broker") {
    rd_kafka_mock_push_request_errors(kafka.get(), produce_api_key, 1, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
    const auto results = publisher.publish(std::vector{row(2, "a")}, clock_type::now() + 5s, always);
    CHECK(results[0].status == delivery_status::rejected);
    CHECK(results[0].reason == "msg_size_too_large");
  }
  SECTION("TOPIC_AUTHORIZATION_FAILED blocks the topic, the row is not the problem") {
    rd_kafka_mock_push_request_errors(kafka.get(), produce_api_key, 1, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
    const auto results = publisher.publish(std::vector{row(2, "a"), row(3, "a")}, clock_type::now() + 5s, always);
    CHECK(results[0].status == delivery_status::blocked);
    CHECK(results[0].reason == "topic_authorization_failed");
    CHECK(results[1].status != delivery_status::rejected);
  }
  SECTION("CLUSTER_AUTHORIZATION_FAILED blocks the topic") {
    rd_kafka_mock_push_request_errors(kafka.get(), produce_api_key, 1, RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED);
    const auto results = publisher.publish(std::vector{row(2, "a")}, clock_type::now() + 5s, always);
    INFO(results[0].error);
    CHECK(results[0].status != delivery_status::rejected);
    CHECK(results[0].status != delivery_status::persisted);
  }
  SECTION("NOT_ENOUGH_REPLICAS until the deadline: never the row's fault") {
    std::vector<rd_kafka_resp_err_t> errors(200, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
    rd_kafka_mock_push_request_errors_array(kafka.get(), produce_api_key, errors.size(), errors.data());
    const auto results = publisher.publish(std::vector{row(2, "a")}, clock_type::now() + 5s, always);
    INFO(results[0].error);
    CHECK((results[0].status == delivery_status::blocked || results[0].status == delivery_status::failed));
  }
  SECTION("NOT_ENOUGH_REPLICAS twice, then success: librdkafka retries, the row is persisted") {
    rd_kafka_mock_push_request_errors(kafka.get(), produce_api_key, 2, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
                                      RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
    const auto results = publisher.publish(std::vector{row(2, "a")}, clock_type::now() + 5s, always);
    INFO(results[0].error);
    CHECK(results[0].status == delivery_status::persisted);
  }
}

// Pins: a broker outage reported as delivered (rows would be deleted) or as the message's fault
// (rows would be dead-lettered), or a publisher that needs a restart once the broker is back.
TEST_CASE("kafka publisher: broker down is transient, bounded by the deadline, and recovers", "[relay][kafka][mock]") {
  mock_kafka kafka;
  relay::kafka_publisher publisher(config_for(kafka, 2s));
  REQUIRE(publisher.publish(std::vector{row(1, "warm-up")}, clock_type::now() + 5s, always)[0].status ==
          delivery_status::persisted);

  rd_kafka_mock_broker_set_down(kafka.get(), 1);
  const std::vector<relay::outbox_row> rows = {row(2, "a"), row(3, "b"), row(4, "a")};
  const auto results = publisher.publish(rows, clock_type::now() + 2s, always);
  for (const auto& r : results) {
    INFO(r.error);
    CHECK(r.status == delivery_status::failed);
  }
  CHECK_FALSE(publisher.reachable(500ms));

  rd_kafka_mock_broker_set_up(kafka.get(), 1);
  bool back = false;
  for (int i = 0; i < 50 && !back; ++i) back = publisher.reachable(500ms);
  REQUIRE(back);
  const auto again = publisher.publish(rows, clock_type::now() + 5s, always);
  for (const auto& r : again) {
    INFO(r.error);
    CHECK(r.status == delivery_status::persisted);
  }
}

TEST_CASE("kafka publisher: keep_waiting returning false ends the wait, rows count as failed", "[relay][kafka][mock]") {
  mock_kafka kafka;
  relay::kafka_publisher publisher(config_for(kafka, 10s));
  rd_kafka_mock_broker_set_down(kafka.get(), 1);
  int calls = 0;
  const auto results =
      publisher.publish(std::vector{row(1, "a")}, clock_type::now() + 10s, [&] { return ++calls < 3; });
  CHECK(calls >= 3);
  CHECK(results[0].status == delivery_status::failed);
}

// Pins: a produce to a topic that does not exist (auto-creation off) dead-lettering its rows, or
// a publisher that keeps the topic marked missing after it was created.
TEST_CASE("kafka publisher: an unknown topic blocks, and flows once the topic exists", "[relay][kafka][mock]") {
  mock_kafka kafka;
  // The mock creates topics on first use; its metadata then reports the topic as missing.
  rd_kafka_mock_topic_set_error(kafka.get(), "relay_missing", RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
  auto config = config_for(kafka);
  config.kafka.properties["topic.metadata.propagation.max.ms"] = "500";
  relay::kafka_publisher publisher(config);
  REQUIRE(publisher.reachable(5s));
  const std::vector<relay::outbox_row> rows = {row(1, "a", 16, "relay_missing"), row(2, "b", 16, "relay_missing")};

  const auto results = publisher.publish(rows, clock_type::now() + 5s, always);
  for (const auto& r : results) {
    INFO(r.error);
    CHECK(r.status == delivery_status::blocked);
    CHECK_THAT(r.reason, Catch::StartsWith("unknown_topic"));
  }

  rd_kafka_mock_topic_set_error(kafka.get(), "relay_missing", RD_KAFKA_RESP_ERR_NO_ERROR);  // created
  publisher.refresh_topics(std::vector<std::string>{"relay_missing"});
  const auto again = publisher.publish(rows, clock_type::now() + 5s, always);
  for (const auto& r : again) {
    INFO(r.error);
    CHECK(r.status == delivery_status::persisted);
  }
}
