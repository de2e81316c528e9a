#pragma once
// Shared by the relay_bench modes (relay_bench.cpp has the list and main): the rows every mode
// writes or produces, the options, and the relay and Kafka pieces more than one mode uses.

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include <librdkafka/rdkafka.h>
#include <pqxx/pqxx>

#include "relay/config.hpp"
#include "test_support.hpp"

namespace relay_bench {

constexpr int users = 1000;

// The payload, key and headers of row `i`, identical in SQL (for the outbox) and in C++ (for the
// no-database ceilings).
inline constexpr const char* payload_sql =
    "convert_to(format('{\"withdrawal_id\":\"%s\",\"user_id\":\"%s\","
    "\"to_address\":\"0x8ba1f109551bD432803012645Ac136ddd64DBA72\",\"amount\":\"1.250000000000000000\","
    "\"chain\":\"ethereum\",\"event\":\"WithdrawalCreated\"}', i, i % 1000), 'UTF8')";
std::string payload_of(std::int64_t i);
std::string key_of(std::int64_t i);
inline constexpr const char* headers_json = R"({"event-type": "WithdrawalCreated"})";

struct options {
  std::string mode;
  std::int64_t rows = 1'000'000;
  int relays = 1;
  int batch_size = 1000;
  int rate = 1000;
  int seconds = 30;
  int warmup = 3;
  int writers = 4;
  int clients = 1;
};

/// Inserts rows 1..n in chunks of one statement each, then VACUUM (ANALYZE) (as autovacuum would
/// soon do with the table's thresholds) and CHECKPOINT, so the relay is measured on a table the
/// planner knows.
void fill_outbox(pqxx::connection& db, const std::string& topic, std::int64_t n);
/// An outbox-relay on `schema` with conf/relay.toml, the RELAY_* environment and `batch_size`;
/// its log under /tmp (printed).
std::unique_ptr<test_support::child_process> start_relay(const test_support::test_schema& schema, int batch_size);
/// Waits for `relay ready` (60 s); throws with the log otherwise.
void wait_ready(test_support::child_process& relay);
/// conf/relay.toml with the RELAY_* environment, as outbox-relay reads it.
relay::relay_config bench_relay_config();

/// Delivery reports counted by count_delivery (set as the producer's opaque and dr_msg_cb).
struct delivery_counts {
  std::atomic<std::int64_t> persisted{0};
  std::atomic<std::int64_t> failed{0};
};
void count_delivery(rd_kafka_t*, const rd_kafka_message_t* message, void* opaque);
/// Queues message `i` as the relay would send row `i`: its key and payload, the row's headers
/// object ({"event-type": ...}) plus outbox-id. Returns librdkafka's answer (QUEUE_FULL: poll and
/// call again).
rd_kafka_resp_err_t produce_message(rd_kafka_t* producer, const std::string& topic, std::int64_t i);

// The modes (the file's header in relay_bench.cpp says what each measures).
int drain(const options& o);              // database_modes.cpp
int db_ceiling(const options& o);         // database_modes.cpp
int claim_ceiling(const options& o);      // database_modes.cpp
int produce_ceiling(const options& o);    // broker_modes.cpp
int publisher_ceiling(const options& o);  // broker_modes.cpp
int broker_latency(const options& o);     // broker_modes.cpp
int latency(const options& o);            // latency_mode.cpp

}  // namespace relay_bench
