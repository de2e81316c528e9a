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
    // rd_kafka_produceva: the typed form of rd_kafka_producev, whose macros need C casts.
    std::array<rd_kafka_vu_t, 5> fields{};
    fields[0].vtype = RD_KAFKA_VTYPE_TOPIC;
    fields[0].u.cstr = topic.c_str();
    fields[1].vtype = RD_KAFKA_VTYPE_KEY;
    fields[1].u.mem = {const_cast<char*>(key.data()), key.size()};
    fields[2].vtype = RD_KAFKA_VTYPE_VALUE;
    fields[2].u.mem = {const_cast<char*>(value.data()), value.size()};
    fields[3].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
    fields[3].u.i = RD_KAFKA_MSG_F_COPY;
    fields[4].vtype = RD_KAFKA_VTYPE_HEADER;
    fields[4].u.header = {"outbox-id", id.data(), static_cast<ssize_t>(id.size())};
    rd_kafka_error_t* error = rd_kafka_produceva(producer.get(), fields.data(), fields.size());
    const auto err = error == nullptr ? RD_KAFKA_RESP_ERR_NO_ERROR : rd_kafka_error_code(error);
    if (error != nullptr) rd_kafka_error_destroy(error);
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
