#include <catch2/catch.hpp>

#include <array>

#include <librdkafka/rdkafka.h>

#include "common/kafka.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;

TEST_CASE("kafka: an idempotent producer round trip through the real broker", "[kafka]") {
  const auto topic = test_support::unique_name("roundtrip");
  test_support::create_topic(topic, 3);

  common::kafka::kafka_config config;
  config.bootstrap_servers = test_support::require_env("KAFKA_BOOTSTRAP_SERVERS");
  auto conf = common::kafka::make_conf(config, {{"enable.idempotence", "true"}, {"acks", "all"}});
  int persisted = 0;
  rd_kafka_conf_set_opaque(conf.get(), &persisted);
  rd_kafka_conf_set_dr_msg_cb(conf.get(), [](rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && rd_kafka_message_status(m) == RD_KAFKA_MSG_STATUS_PERSISTED) {
      ++*static_cast<int*>(opaque);
    }
  });
  auto producer = common::kafka::make_producer(std::move(conf));
  REQUIRE(common::kafka::broker_reachable(producer.get(), 10s));

  for (int i = 0; i < 10; ++i) {
    const std::string key = "user-" + std::to_string(i % 2);
    const std::string value = R"({"n":)" + std::to_string(i) + "}";
    const std::string id = std::to_string(i);
    auto headers = common::kafka::new_headers(1);
    common::kafka::add_header(headers.get(), "outbox-id", id);
    common::kafka::produce_fields fields;
    fields.topic = topic.c_str();
    fields.key = key;
    fields.value = value;
    const auto error = common::kafka::produce(producer.get(), fields, headers);
    const auto err = error ? rd_kafka_error_code(error.get()) : RD_KAFKA_RESP_ERR_NO_ERROR;
    REQUIRE(err == RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  REQUIRE(rd_kafka_flush(producer.get(), 30000) == RD_KAFKA_RESP_ERR_NO_ERROR);
  CHECK(persisted == 10);

  const auto messages = test_support::read_topic(topic, 10, 30s);
  REQUIRE(messages.size() == 10);
  // Per key, the order produced is the order stored.
  std::map<std::string, std::vector<int>> ids_by_key;
  for (const auto& m : messages) ids_by_key[*m.key].push_back(std::stoi(m.headers.at("outbox-id")));
  CHECK(ids_by_key["user-0"] == std::vector<int>{0, 2, 4, 6, 8});
  CHECK(ids_by_key["user-1"] == std::vector<int>{1, 3, 5, 7, 9});
}
