// relay_bench latency: steady committed inserts, one relay, one consumer.

#include <algorithm>
#include <cmath>
#include <iterator>
#include <memory>
#include <csignal>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <pqxx/pqxx>

#include "bench_support.hpp"
#include "http_client.hpp"
#include "relay_bench.hpp"

namespace relay_bench {

using namespace std::chrono_literals;
using bench::arrival_recorder;
using bench::now_us;
using bench::print_latencies;
using bench::proc_status_kib;
using bench::result;
using bench::seconds_since;
using bench::steady;

namespace {

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

}  // namespace

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

  std::vector<std::unique_ptr<pqxx::connection>> connections;  // one per writer
  for (int w = 0; w < o.writers; ++w) {
    auto& db = *connections.emplace_back(std::make_unique<pqxx::connection>(schema.url()));
    db.prepare("insert", fmt::format("INSERT INTO outbox_messages (topic, key, payload, headers) "
                                     "SELECT $1, 'user-' || (i % 1000), {}, $3::jsonb FROM (SELECT $2::bigint AS i) s "
                                     "RETURNING id, floor(extract(epoch FROM created_at) * 1000000)::bigint",
                                     payload_sql));
  }
  const auto writes = bench::paced_writers(o.rate, o.writers, o.warmup, o.seconds, [&](int w, std::int64_t i) {
    pqxx::nontransaction tx(*connections[static_cast<std::size_t>(w)]);  // autocommit: one transaction per INSERT
    const auto row = tx.exec_prepared1("insert", topic, i, headers_json);
    return bench::write_receipt{row[0].as<std::int64_t>(), row[1].as<std::int64_t>()};
  });
  std::vector<bench::paced_write> all;
  std::copy_if(writes.begin(), writes.end(), std::back_inserter(all), [](const auto& w) { return w.measured; });
  const double achieved_rate = static_cast<double>(all.size()) / o.seconds;
  const auto written_total = writes.size();
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
    const auto it = arrivals.first_arrival_us().find(w.receipt.id);
    if (it == arrivals.first_arrival_us().end()) {
      ++missing;
      continue;
    }
    from_created.push_back(it->second - w.receipt.created_us);
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

}  // namespace relay_bench
