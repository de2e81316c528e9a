// outbox-relay benchmark driver (bench/relay/run.sh runs it and writes bench/README.md).
//
//   relay_bench drain             --rows N [--relays K] [--batch-size B]
//       N rows inserted up front, then K outbox-relay processes drain them to a fresh Kafka topic.
//   relay_bench db-ceiling        --rows N [--batch-size B] [--clients C]
//       Ceiling (a), the database alone: pgbench runs one claim-and-delete statement per batch
//       (SKIP LOCKED, id order, RETURNING the rows) on C connections (default 1; 2 is the ceiling
//       of two relays) with the relay's session settings. No relay code, no broker.
//   relay_bench claim-ceiling     --rows N [--batch-size B]
//       Diagnostic: the relay's own claim-and-delete statement and commit (relay::store) in a loop,
//       no broker.
//   relay_bench produce-ceiling   --rows N
//       librdkafka alone with the relay's producer properties (relay::producer_defaults plus
//       [kafka.properties] of conf/relay.toml and RELAY_KAFKA_PROPERTIES), no database.
//   relay_bench publisher-ceiling --rows N [--batch-size B]
//       The relay's Kafka publisher, one batch at a time as the relay does, no database.
//   relay_bench latency           [--rate R] [--seconds S] [--warmup S] [--writers W]
//       R rows/s, each INSERT its own committed transaction, one relay, one consumer: latency from
//       the row's created_at (and from the writer's commit) to the consumer receiving it. The
//       first --warmup seconds (default 3) run at the same rate and are delivered but not counted:
//       they cover the consumer's first fetch and the relay's first look-up of the topic.
//   relay_bench broker-latency    [--rate R] [--seconds S] [--warmup S]
//       The floor under that: R msgs/s straight to Kafka (relay producer defaults), same consumer.
//
// Experiments: the RELAY_* environment (e.g. RELAY_KAFKA_PROPERTIES, RELAY_OUTBOX_SYNCHRONOUS_COMMIT)
// reaches the relays and the ceilings that use their settings, as it reaches outbox-relay. None is
// set for the reported table.
// Needs the services (`eval "$(scripts/services env)"`). Prints `result <name> <value>` lines for
// run.sh and `# ...` lines for people. Every row carries the same ~180-byte WithdrawalCreated-like
// JSON payload shape, a key out of 1,000 users and one header.

#include <charconv>
#include <iostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>

#include <fmt/format.h>

#include "bench_support.hpp"
#include "common/kafka.hpp"
#include "relay_bench.hpp"

namespace relay_bench {

using namespace std::chrono_literals;

namespace {
constexpr std::int64_t insert_chunk = 100'000;
}  // namespace

std::string payload_of(std::int64_t i) {
  return fmt::format(
      "{{\"withdrawal_id\":\"{}\",\"user_id\":\"{}\",\"to_address\":\"0x8ba1f109551bD432803012645Ac136ddd64DBA72\","
      "\"amount\":\"1.250000000000000000\",\"chain\":\"ethereum\",\"event\":\"WithdrawalCreated\"}}",
      i, i % users);
}
std::string key_of(std::int64_t i) { return fmt::format("user-{}", i % users); }

void fill_outbox(pqxx::connection& db, const std::string& topic, std::int64_t n) {
  const auto start = bench::steady::now();
  for (std::int64_t first = 1; first <= n; first += insert_chunk) {
    const auto last = std::min(n, first + insert_chunk - 1);
    pqxx::work tx(db);
    tx.exec_params0(fmt::format("INSERT INTO outbox_messages (topic, key, payload, headers) "
                                "SELECT $1, 'user-' || (i % 1000), {}, $4::jsonb "
                                "FROM generate_series($2::bigint, $3::bigint) AS i ORDER BY i",
                                payload_sql),
                    topic, first, last, headers_json);
    tx.commit();
  }
  // Every run starts alike: statistics and hint bits set, and no checkpoint owed for the inserts
  // (one falling inside a measured drain would otherwise decide the figure).
  pqxx::nontransaction(db).exec0("VACUUM (ANALYZE) outbox_messages");
  pqxx::nontransaction(db).exec0("CHECKPOINT");
  fmt::print("# inserted {} rows in {:.1f}s\n", n, bench::seconds_since(start));
}

namespace {
std::map<std::string, std::string> relay_env(const test_support::test_schema& schema, int batch_size) {
  return {{"DATABASE_URL", schema.url()},
          {"KAFKA_BOOTSTRAP_SERVERS", test_support::require_env("KAFKA_BOOTSTRAP_SERVERS")},
          {"REDIS_MQ_TYPE", "kafka"},
          {"RELAY_HTTP_PORT", "0"},
          {"RELAY_LOG_LEVEL", std::getenv("RELAY_LOG_LEVEL") != nullptr ? std::getenv("RELAY_LOG_LEVEL") : "info"},
          {"RELAY_OUTBOX_BATCH_SIZE", std::to_string(batch_size)}};
}
}  // namespace

std::unique_ptr<test_support::child_process> start_relay(const test_support::test_schema& schema, int batch_size) {
  const auto log = fmt::format("/tmp/relay-bench-{}.log", test_support::unique_name("relay"));
  fmt::print("# relay log: {}\n", log);
  return std::make_unique<test_support::child_process>(
      test_support::bin_path("outbox-relay"),
      std::vector<std::string>{"--config", std::string(OUTBOX_SOURCE_DIR) + "/conf/relay.toml"},
      relay_env(schema, batch_size), log);
}

void wait_ready(test_support::child_process& relay) {
  if (!test_support::wait_until([&] { return relay.log_contains("relay ready") || !relay.running(); }, 60s, 10ms) ||
      !relay.log_contains("relay ready")) {
    throw std::runtime_error("outbox-relay did not become ready:\n" + relay.log());
  }
}

relay::relay_config bench_relay_config() {
  return relay::load_config(std::string(OUTBOX_SOURCE_DIR) + "/conf/relay.toml");
}

void count_delivery(rd_kafka_t*, const rd_kafka_message_t* message, void* opaque) {
  auto* counts = static_cast<delivery_counts*>(opaque);
  if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    ++counts->persisted;
  } else {
    ++counts->failed;
  }
}

rd_kafka_resp_err_t produce_message(rd_kafka_t* producer, const std::string& topic, std::int64_t i) {
  static const std::string event_type = "WithdrawalCreated";
  const auto payload = payload_of(i);
  const auto key = key_of(i);
  const auto id = std::to_string(i);
  auto headers = common::kafka::new_headers(2);
  common::kafka::add_header(headers.get(), "event-type", event_type);
  common::kafka::add_header(headers.get(), "outbox-id", id);
  common::kafka::produce_fields fields;
  fields.topic = topic.c_str();
  fields.key = key;
  fields.value = payload;
  const auto error = common::kafka::produce(producer, fields, headers);
  if (error) return rd_kafka_error_code(error.get());
  return RD_KAFKA_RESP_ERR_NO_ERROR;
}

namespace {

options parse_options(int argc, char** argv) {
  if (argc < 2) throw std::invalid_argument("usage: relay_bench <mode> [--rows N] ... (see the file's header)");
  options o;
  o.mode = argv[1];
  auto number = [](const std::string& flag, const char* text) {
    std::int64_t value = 0;
    const std::string_view s(text);
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (ec != std::errc{} || end != s.data() + s.size() || value <= 0) {
      throw std::invalid_argument(fmt::format("{} must be a positive whole number, got \"{}\"", flag, s));
    }
    return value;
  };
  for (int i = 2; i < argc; i += 2) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) throw std::invalid_argument(flag + " needs a value");
    const auto value = number(flag, argv[i + 1]);
    if (flag == "--rows") {
      o.rows = value;
    } else if (flag == "--relays") {
      o.relays = static_cast<int>(value);
    } else if (flag == "--batch-size") {
      o.batch_size = static_cast<int>(value);
    } else if (flag == "--rate") {
      o.rate = static_cast<int>(value);
    } else if (flag == "--seconds") {
      o.seconds = static_cast<int>(value);
    } else if (flag == "--warmup") {
      o.warmup = static_cast<int>(value);
    } else if (flag == "--writers") {
      o.writers = static_cast<int>(value);
    } else if (flag == "--clients") {
      o.clients = static_cast<int>(value);
    } else {
      throw std::invalid_argument("unknown option " + flag);
    }
  }
  return o;
}

}  // namespace
}  // namespace relay_bench

int main(int argc, char** argv) {
  try {
    using namespace relay_bench;
    const auto o = parse_options(argc, argv);
    if (o.mode == "drain") return drain(o);
    if (o.mode == "db-ceiling") return db_ceiling(o);
    if (o.mode == "claim-ceiling") return claim_ceiling(o);
    if (o.mode == "produce-ceiling") return produce_ceiling(o);
    if (o.mode == "publisher-ceiling") return publisher_ceiling(o);
    if (o.mode == "latency") return latency(o);
    if (o.mode == "broker-latency") return broker_latency(o);
    std::cerr << "relay_bench: unknown mode \"" << o.mode << "\" (see bench/relay/relay_bench.cpp)\n";
    return 2;
  } catch (const std::invalid_argument& e) {
    std::cerr << "relay_bench: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "relay_bench: " << e.what() << "\n";
    return 1;
  }
}
