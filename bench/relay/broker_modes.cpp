// relay_bench modes without a database: librdkafka alone (ceiling (b)), the relay's publisher,
// and the broker's own latency floor.

#include <chrono>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>
#include <librdkafka/rdkafka.h>

#include "bench_support.hpp"
#include "common/kafka.hpp"
#include "relay/publishers.hpp"
#include "relay_bench.hpp"

namespace relay_bench {

using namespace std::chrono_literals;
using bench::arrival_recorder;
using bench::now_us;
using bench::print_latencies;
using bench::result;
using bench::seconds_since;
using bench::steady;

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

}  // namespace relay_bench
