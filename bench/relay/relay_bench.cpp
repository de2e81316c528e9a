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

#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>
#include <librdkafka/rdkafka.h>
#include <pqxx/pqxx>

#include "common/kafka.hpp"
#include "relay/config.hpp"
#include "relay/publishers.hpp"
#include "relay/store.hpp"
#include "http_client.hpp"
#include "bench_support.hpp"
#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using bench::arrival_recorder;
using bench::now_us;
using bench::print_latencies;
using bench::proc_cpu_seconds;
using bench::proc_status_kib;
using bench::result;
using bench::seconds_since;
using bench::steady;
using bench::topic_size;

constexpr int users = 1000;
constexpr std::int64_t insert_chunk = 100'000;

// The payload, key and headers of row `i`, identical in SQL (for the outbox) and in C++ (for the
// no-database ceilings).
constexpr const char* payload_sql =
    "convert_to(format('{\"withdrawal_id\":\"%s\",\"user_id\":\"%s\","
    "\"to_address\":\"0x8ba1f109551bD432803012645Ac136ddd64DBA72\",\"amount\":\"1.250000000000000000\","
    "\"chain\":\"ethereum\",\"event\":\"WithdrawalCreated\"}', i, i % 1000), 'UTF8')";
std::string payload_of(std::int64_t i) {
  return fmt::format(
      "{{\"withdrawal_id\":\"{}\",\"user_id\":\"{}\",\"to_address\":\"0x8ba1f109551bD432803012645Ac136ddd64DBA72\","
      "\"amount\":\"1.250000000000000000\",\"chain\":\"ethereum\",\"event\":\"WithdrawalCreated\"}}",
      i, i % users);
}
std::string key_of(std::int64_t i) { return fmt::format("user-{}", i % users); }
constexpr const char* headers_json = R"({"event-type": "WithdrawalCreated"})";

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

// Inserts rows 1..n in chunks of one statement each, then VACUUM (ANALYZE) (as autovacuum would
// soon do with the table's thresholds) and CHECKPOINT, so the relay is measured on a table the
// planner knows.
void fill_outbox(pqxx::connection& db, const std::string& topic, std::int64_t n) {
  const auto start = steady::now();
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
  fmt::print("# inserted {} rows in {:.1f}s\n", n, seconds_since(start));
}

std::map<std::string, std::string> relay_env(const test_support::test_schema& schema, int batch_size) {
  return {{"DATABASE_URL", schema.url()},
          {"KAFKA_BOOTSTRAP_SERVERS", test_support::require_env("KAFKA_BOOTSTRAP_SERVERS")},
          {"REDIS_MQ_TYPE", "kafka"},
          {"RELAY_HTTP_PORT", "0"},
          {"RELAY_LOG_LEVEL", std::getenv("RELAY_LOG_LEVEL") != nullptr ? std::getenv("RELAY_LOG_LEVEL") : "info"},
          {"RELAY_OUTBOX_BATCH_SIZE", std::to_string(batch_size)}};
}

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

int drain(const options& o) {
  test_support::test_schema schema;
  auto db = schema.connect();
  const auto topic = test_support::unique_name("bench_drain");
  test_support::create_topic(topic, 6);
  fill_outbox(db, topic, o.rows);

  std::vector<std::unique_ptr<test_support::child_process>> relays;
  for (int i = 0; i < o.relays; ++i) relays.push_back(start_relay(schema, o.batch_size));
  for (auto& relay : relays) wait_ready(*relay);
  const auto start = steady::now();
  const auto deadline = start + 30min;
  std::int64_t peak_rss_kib = 0;
  for (;;) {
    const bool empty =
        pqxx::nontransaction(db).exec1("SELECT NOT EXISTS (SELECT 1 FROM outbox_messages)")[0].as<bool>();
    if (empty) break;
    for (auto& relay : relays) {
      if (!relay->running()) throw std::runtime_error("outbox-relay exited during the drain:\n" + relay->log());
      peak_rss_kib = std::max(peak_rss_kib, proc_status_kib(relay->pid(), "VmRSS"));
    }
    if (steady::now() > deadline) throw std::runtime_error("the drain did not finish within 30 minutes");
    std::this_thread::sleep_for(100ms);
  }
  const double elapsed = seconds_since(start);
  std::int64_t hwm_kib = 0;
  double cpu = 0;
  for (auto& relay : relays) {
    hwm_kib = std::max(hwm_kib, proc_status_kib(relay->pid(), "VmHWM"));
    cpu += proc_cpu_seconds(relay->pid());
  }
  for (auto& relay : relays) relay->signal(SIGTERM);
  for (auto& relay : relays) relay->wait(60s);
  const auto published = topic_size(topic);
  fmt::print(
      "# {} relay(s) drained {} rows in {:.2f}s: {:.0f} msgs/s; peak VmHWM {} KiB, relay CPU {:.1f}s; "
      "{} messages in the topic\n",
      o.relays, o.rows, elapsed, static_cast<double>(o.rows) / elapsed, hwm_kib, cpu, published);
  result("rows", o.rows);
  result("relays", static_cast<std::int64_t>(o.relays));
  result("seconds", elapsed);
  result("msgs_per_s", static_cast<double>(o.rows) / elapsed);
  result("vm_hwm_kib", hwm_kib);
  result("vm_rss_peak_kib", peak_rss_kib);
  result("relay_cpu_s", cpu);
  result("published", published);
  if (published < o.rows)
    throw std::runtime_error(fmt::format("only {} of {} rows reached the topic", published, o.rows));
  return 0;
}

// conf/relay.toml with the RELAY_* environment, as outbox-relay reads it.
relay::relay_config bench_relay_config() {
  return relay::load_config(std::string(OUTBOX_SOURCE_DIR) + "/conf/relay.toml");
}

// Queues message `i` as the relay would send row `i`: its key and payload, the row's headers
// object ({"event-type": ...}) plus outbox-id. Returns librdkafka's answer (QUEUE_FULL: poll and
// call again).
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

// Ceiling (a): the database alone. One statement claims (SKIP LOCKED, in id order) and deletes a
// batch and returns its rows, one batch per transaction, run by pgbench on --clients connections
// (SKIP LOCKED shares the rows out) with the relay's session settings: no relay code, no broker.
int db_ceiling(const options& o) {
  test_support::test_schema schema;
  {
    auto db = schema.connect();
    fill_outbox(db, test_support::unique_name("bench_db"), o.rows);
  }
  const auto settings = relay::session_settings_for(bench_relay_config().outbox);
  const auto script = fmt::format("/tmp/{}.sql", test_support::unique_name("db_ceiling"));
  std::ofstream(script) << fmt::format(
      "WITH c AS (SELECT id FROM outbox_messages ORDER BY id LIMIT {} FOR UPDATE SKIP LOCKED)\n"
      "DELETE FROM outbox_messages o USING c WHERE o.id = c.id\n"
      "RETURNING o.id, o.topic, o.key, o.payload, o.headers::text, o.attempts, o.created_at;\n",
      o.batch_size);
  // Each client runs its share of the batches (one more at most: an empty claim at the end).
  const auto batches = (o.rows + o.batch_size - 1) / o.batch_size;
  const auto per_client = (batches + o.clients - 1) / o.clients;
  const auto clients = std::to_string(o.clients);
  const auto log = fmt::format("/tmp/{}.log", test_support::unique_name("db_ceiling"));
  const auto start = steady::now();
  test_support::child_process pgbench(
      "/usr/bin/pgbench",
      {"-n", "-M", "prepared", "-c", clients, "-j", clients, "-t", std::to_string(per_client), "-f", script,
       schema.url()},
      {{"PGOPTIONS", fmt::format("-c synchronous_commit={}", settings.synchronous_commit ? "on" : "off")}}, log);
  const auto code = pgbench.wait(30min);
  const double elapsed = seconds_since(start);
  std::remove(script.c_str());
  if (code != 0) throw std::runtime_error("pgbench failed:\n" + pgbench.log());
  auto db = schema.connect();
  const auto left = pqxx::nontransaction(db).exec1("SELECT count(*) FROM outbox_messages")[0].as<std::int64_t>();
  if (left != 0) throw std::runtime_error(fmt::format("pgbench left {} rows", left));
  fmt::print(
      "# database alone (pgbench, one statement per batch of {}, {} connection(s)): {} rows in {:.2f}s: {:.0f} "
      "rows/s\n",
      o.batch_size, o.clients, o.rows, elapsed, static_cast<double>(o.rows) / elapsed);
  result("clients", static_cast<std::int64_t>(o.clients));
  result("rows", o.rows);
  result("seconds", elapsed);
  result("msgs_per_s", static_cast<double>(o.rows) / elapsed);
  return 0;
}

int claim_ceiling(const options& o) {
  test_support::test_schema schema;
  auto db = schema.connect();
  fill_outbox(db, test_support::unique_name("bench_claim"), o.rows);
  {
    // Dead letters of other keys, as a system that has had some: the claim's dead_letter_blocks_key
    // probe then walks a real index instead of an empty table.
    pqxx::work tx(db);
    tx.exec0(
        "INSERT INTO outbox_dead_letters (id, topic, key, payload, headers, created_at, attempts, last_error) "
        "SELECT -i, 'bench', 'dead-' || i, '', '{}', now(), 5, 'bench' FROM generate_series(1, 1000) AS i");
    tx.commit();
  }
  auto settings = relay::session_settings_for(bench_relay_config().outbox);
  settings.idle_limit = 10min;  // the bench holds the store without keep-alives
  relay::store store(schema.database_config("relay-bench"), settings);
  std::vector<std::int16_t> all(256);
  for (std::size_t p = 0; p < all.size(); ++p) all[p] = static_cast<std::int16_t>(p);
  const auto owned = store.try_lock_partitions(all, all.size());
  if (owned.size() != all.size()) throw std::runtime_error("could not lease all 256 partitions");

  const auto start = steady::now();
  std::int64_t claimed = 0;
  std::int64_t batches = 0;
  steady::duration claiming{};
  for (;;) {
    const auto claim_started = steady::now();
    auto batch = store.claim(owned, static_cast<std::size_t>(o.batch_size));
    claiming += steady::now() - claim_started;
    if (batch.rows().empty()) {
      batch.commit();
      break;
    }
    claimed += static_cast<std::int64_t>(batch.rows().size());
    batch.commit();  // the claim deleted the rows (the relay's fast path)
    ++batches;
  }
  const double elapsed = seconds_since(start);
  const double claim_ms =
      std::chrono::duration<double, std::milli>(claiming).count() / std::max(1.0, static_cast<double>(batches));
  fmt::print(
      "# claim+delete ceiling: {} rows in {} batches of {} in {:.2f}s: {:.0f} rows/s; claim {:.2f} ms/batch "
      "(dead_letter_blocks_key {})\n",
      claimed, batches, o.batch_size, elapsed, static_cast<double>(claimed) / elapsed, claim_ms,
      settings.dead_letter_blocks_key);
  result("claim_ms_per_batch", claim_ms);
  result("rows", claimed);
  result("seconds", elapsed);
  result("msgs_per_s", static_cast<double>(claimed) / elapsed);
  return claimed == o.rows ? 0 : 1;
}

// The relay's configuration as outbox-relay itself would load it (conf/relay.toml plus the RELAY_*
// environment), so the no-database ceilings use exactly its producer properties.
struct delivery_counts {
  std::atomic<std::int64_t> persisted{0};
  std::atomic<std::int64_t> failed{0};
};

void count_delivery(rd_kafka_t*, const rd_kafka_message_t* message, void* opaque) {
  auto* counts = static_cast<delivery_counts*>(opaque);
  if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    ++counts->persisted;
  } else {
    ++counts->failed;
  }
}

int produce_ceiling(const options& o) {
  const auto config = bench_relay_config();
  const auto topic = test_support::unique_name("bench_produce");
  test_support::create_topic(topic, 6);
  delivery_counts counts;
  auto conf = common::kafka::make_conf(config.kafka, relay::producer_defaults(config));
  rd_kafka_conf_set_opaque(conf.get(), &counts);
  rd_kafka_conf_set_dr_msg_cb(conf.get(), &count_delivery);
  auto producer = common::kafka::make_producer(std::move(conf));

  const auto start = steady::now();
  for (std::int64_t i = 1; i <= o.rows; ++i) {
    auto code = produce_message(producer.get(), topic, i);
    for (; code == RD_KAFKA_RESP_ERR__QUEUE_FULL; code = produce_message(producer.get(), topic, i)) {
      rd_kafka_poll(producer.get(), 10);
    }
    if (code != RD_KAFKA_RESP_ERR_NO_ERROR) throw std::runtime_error(rd_kafka_err2str(code));
    rd_kafka_poll(producer.get(), 0);
  }
  if (rd_kafka_flush(producer.get(), 120000) != RD_KAFKA_RESP_ERR_NO_ERROR) throw std::runtime_error("flush timed out");
  const double elapsed = seconds_since(start);
  fmt::print("# librdkafka ceiling: {} messages persisted ({} failed) in {:.2f}s: {:.0f} msgs/s\n",
             counts.persisted.load(), counts.failed.load(), elapsed, static_cast<double>(counts.persisted) / elapsed);
  result("rows", counts.persisted.load());
  result("seconds", elapsed);
  result("msgs_per_s", static_cast<double>(counts.persisted) / elapsed);
  return counts.failed == 0 ? 0 : 1;
}

int publisher_ceiling(const options& o) {
  const auto config = bench_relay_config();
  const auto topic = test_support::unique_name("bench_publisher");
  test_support::create_topic(topic, 6);
  auto publisher = relay::make_publisher(config);
  const auto start = steady::now();
  std::int64_t persisted = 0;
  for (std::int64_t first = 1; first <= o.rows; first += o.batch_size) {
    std::vector<relay::outbox_row> rows;
    for (std::int64_t i = first; i < first + o.batch_size && i <= o.rows; ++i) {
      relay::outbox_row row;
      row.id = i;
      row.topic = topic;
      row.key = key_of(i);
      row.payload = payload_of(i);
      row.headers = headers_json;
      rows.push_back(std::move(row));
    }
    const auto results = publisher->publish(rows, steady::now() + 30s, [] { return true; });
    for (const auto& r : results) persisted += r.status == relay::delivery_status::persisted ? 1 : 0;
  }
  const double elapsed = seconds_since(start);
  publisher->close(10s);
  fmt::print("# relay publisher ceiling (batches of {}, each awaited): {} persisted in {:.2f}s: {:.0f} msgs/s\n",
             o.batch_size, persisted, elapsed, static_cast<double>(persisted) / elapsed);
  result("rows", persisted);
  result("seconds", elapsed);
  result("msgs_per_s", static_cast<double>(persisted) / elapsed);
  return persisted == o.rows ? 0 : 1;
}

// The q-quantile of a Prometheus histogram in `exposition`, as the upper bound of the bucket it falls in.
double histogram_quantile(const std::string& exposition, const std::string& name, double q) {
  std::vector<std::pair<double, double>> buckets;  // (le, cumulative count)
  std::istringstream lines(exposition);
  std::string line;
  const std::string prefix = name + "_bucket{";
  while (std::getline(lines, line)) {
    if (line.rfind(prefix, 0) != 0) continue;
    const auto le = line.find("le=\"");
    const auto close = line.find('"', le + 4);
    const auto bound = line.substr(le + 4, close - le - 4);
    buckets.emplace_back(bound == "+Inf" ? INFINITY : std::stod(bound), std::stod(line.substr(line.rfind(' ') + 1)));
  }
  if (buckets.empty() || buckets.back().second <= 0) return NAN;
  const double wanted = q * buckets.back().second;
  for (const auto& [le, count] : buckets) {
    if (count >= wanted) return le;
  }
  return INFINITY;
}

int latency(const options& o) {
  test_support::test_schema schema;
  {
    auto db = schema.connect();
    pqxx::nontransaction(db).exec0("CHECKPOINT");  // no write-back owed by earlier runs
  }
  const auto topic = test_support::unique_name("bench_latency");
  test_support::create_topic(topic, 6);
  auto relay = start_relay(schema, o.batch_size);
  wait_ready(*relay);
  arrival_recorder arrivals(topic, bench::message_id::outbox_id_header);

  struct written {
    std::int64_t id;
    std::int64_t created_us;
    std::int64_t committed_us;
    bool measured;  // false during the warm-up
  };
  std::vector<std::vector<written>> per_writer(static_cast<std::size_t>(o.writers));
  std::vector<std::thread> writers;
  const auto start = steady::now() + 200ms;
  const auto measured_from = start + std::chrono::seconds(o.warmup);
  const auto end = measured_from + std::chrono::seconds(o.seconds);
  const auto period = std::chrono::nanoseconds(std::int64_t{1'000'000'000} * o.writers / o.rate);
  std::atomic<std::int64_t> sequence{0};
  for (int w = 0; w < o.writers; ++w) {
    writers.emplace_back([&, w] {
      auto db = schema.connect();
      db.prepare("insert",
                 fmt::format("INSERT INTO outbox_messages (topic, key, payload, headers) "
                             "SELECT $1, 'user-' || (i % 1000), {}, $3::jsonb FROM (SELECT $2::bigint AS i) s "
                             "RETURNING id, floor(extract(epoch FROM created_at) * 1000000)::bigint",
                             payload_sql));
      auto& out = per_writer[static_cast<std::size_t>(w)];
      // Writers are staggered across the period so that rows arrive evenly.
      auto next = start + period * w / o.writers;
      while (next < end) {
        std::this_thread::sleep_until(next);
        pqxx::nontransaction tx(db);  // autocommit: every INSERT is its own committed transaction
        const std::int64_t i = sequence.fetch_add(1) + 1;
        const auto row = tx.exec_prepared1("insert", topic, i, headers_json);
        out.push_back({row[0].as<std::int64_t>(), row[1].as<std::int64_t>(), now_us(), next >= measured_from});
        next += period;
      }
    });
  }
  for (auto& t : writers) t.join();
  std::vector<written> all;
  for (auto& list : per_writer) {
    for (const auto& w : list) {
      if (w.measured) all.push_back(w);
    }
  }
  const double achieved_rate = static_cast<double>(all.size()) / o.seconds;
  const auto written_total = static_cast<std::size_t>(sequence.load());
  test_support::wait_until([&] { return arrivals.distinct() >= written_total; }, 60s, 50ms);
  arrivals.stop();

  // The relay's own view: insert -> broker acknowledgement (relay_commit_to_ack_seconds).
  test_support::http_client operations("127.0.0.1", test_support::wait_for_http_port(*relay), 10s);
  const auto metrics = operations.get("/metrics").body;
  const double relay_hwm_kib = static_cast<double>(proc_status_kib(relay->pid(), "VmHWM"));
  relay->signal(SIGTERM);
  relay->wait(30s);

  std::vector<std::int64_t> from_created;
  std::vector<std::int64_t> from_commit;
  std::size_t missing = 0;
  for (const auto& w : all) {
    const auto it = arrivals.first_arrival_us().find(w.id);
    if (it == arrivals.first_arrival_us().end()) {
      ++missing;
      continue;
    }
    from_created.push_back(it->second - w.created_us);
    from_commit.push_back(it->second - w.committed_us);
  }
  fmt::print("# steady load: {} rows in {}s after a {}s warm-up ({:.0f} rows/s, {} writers), {} received, {} missing\n",
             all.size(), o.seconds, o.warmup, achieved_rate, o.writers, arrivals.total(), missing);
  result("rows", static_cast<std::int64_t>(all.size()));
  result("rate", achieved_rate);
  result("missing", static_cast<std::int64_t>(missing));
  print_latencies("", "created_at -> consumer", from_created);
  print_latencies("commit_", "writer's commit returned -> consumer", from_commit);
  const double ack_p50 = histogram_quantile(metrics, "relay_commit_to_ack_seconds", 0.5) * 1000;
  const double ack_p99 = histogram_quantile(metrics, "relay_commit_to_ack_seconds", 0.99) * 1000;
  fmt::print("# relay_commit_to_ack_seconds (bucket upper bounds): p50 <= {} ms, p99 <= {} ms\n", ack_p50, ack_p99);
  result("relay_ack_p50_le_ms", ack_p50);
  result("relay_ack_p99_le_ms", ack_p99);
  result("vm_hwm_kib", relay_hwm_kib);
  return missing == 0 ? 0 : 1;
}

// The floor under the latency figures: the same rate produced straight to Kafka with the relay's
// producer defaults (each message flushed and awaited, as the relay does with its batch) and read
// by the same consumer, no database.
int broker_latency(const options& o) {
  const auto config = bench_relay_config();
  const auto topic = test_support::unique_name("bench_floor");
  test_support::create_topic(topic, 6);
  arrival_recorder arrivals(topic, bench::message_id::outbox_id_header);
  delivery_counts counts;
  auto conf = common::kafka::make_conf(config.kafka, relay::producer_defaults(config));
  rd_kafka_conf_set_opaque(conf.get(), &counts);
  rd_kafka_conf_set_dr_msg_cb(conf.get(), &count_delivery);
  auto producer = common::kafka::make_producer(std::move(conf));

  std::unordered_map<std::int64_t, std::int64_t> sent_us;  // measured messages only
  const auto period = std::chrono::nanoseconds(std::int64_t{1'000'000'000} / o.rate);
  const auto start = steady::now() + 200ms;
  const auto measured_from = start + std::chrono::seconds(o.warmup);
  const auto end = measured_from + std::chrono::seconds(o.seconds);
  std::int64_t i = 0;
  for (auto next = start; next < end; next += period) {
    std::this_thread::sleep_until(next);
    ++i;
    if (next >= measured_from) sent_us[i] = now_us();
    if (const auto code = produce_message(producer.get(), topic, i); code != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw std::runtime_error(rd_kafka_err2str(code));
    }
    rd_kafka_flush(producer.get(), 5000);  // sent at once and awaited, as the relay does with a batch
  }
  rd_kafka_flush(producer.get(), 30000);
  test_support::wait_until([&] { return arrivals.distinct() >= static_cast<std::size_t>(i); }, 60s, 50ms);
  arrivals.stop();
  std::vector<std::int64_t> latencies;
  for (const auto& [id, sent] : sent_us) {
    const auto it = arrivals.first_arrival_us().find(id);
    if (it != arrivals.first_arrival_us().end()) latencies.push_back(it->second - sent);
  }
  fmt::print("# broker floor: {} messages at {} msgs/s after a {}s warm-up, {} received\n", sent_us.size(), o.rate,
             o.warmup, latencies.size());
  result("rows", static_cast<std::int64_t>(sent_us.size()));
  print_latencies("", "produce call -> consumer", latencies);
  return latencies.size() == sent_us.size() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
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
