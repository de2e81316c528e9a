// The relay side by side with its peers: one driver, the same rows, the same broker, the same
// consumer for every system (bench/peers/README.md; scripts/bench runs it).
//
//   peer_bench drain   --system S --rows N [--instances K]
//       N rows inserted up front (transactions of 10,000) while S is stopped; then S is started
//       and runs until the consumer has seen every row. Timed by the broker's append times
//       (LogAppendTime): from the process start to the last row (its start-up counts) and from
//       the first row to the last (the streaming rate).
//   peer_bench latency --system S [--rate R] [--seconds T] [--warmup W] [--writers K] [--cdf FILE]
//       R rows/s, each INSERT its own committed transaction from K writer connections, S running:
//       latency from the writer's COMMIT returning to the consumer receiving the row. The load
//       starts once a first row came through (start-up is not latency); its first W seconds
//       (default 5: a JVM's JIT) run at the same rate and are not counted. --cdf writes
//       the sorted latencies (ms), one a line, for the plots.
//
// S is `relay` (outbox-relay with conf/relay.toml, in a fresh schema of its own; --instances K
// runs K relays side by side, which share the lease partitions) or the folder of
// a peer (bench/peers/<peer>), driven through its peer.sh: setup, schema, insert-sql, start,
// teardown (bench/peers/README.md). Every row is a key out of 1,000 users and a ~190-byte JSON
// payload whose "seq":N names it; the consumer finds N in the message value, for every system.
// Needs the services (`eval "$(scripts/services env)"`); Debezium needs wal_level=logical.

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <pqxx/pqxx>

#include "bench_support.hpp"
#include "peer_systems.hpp"
#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using bench::result;
using bench::steady;

constexpr int users = 1000;
constexpr std::int64_t rows_per_transaction = 10'000;

std::string key_of(std::int64_t i) { return fmt::format("user-{}", i % users); }
std::string payload_of(std::int64_t i) {
  return fmt::format(
      "{{\"seq\":{},\"withdrawal_id\":\"{}\",\"user_id\":\"{}\",\"to_address\":"
      "\"0x8ba1f109551bD432803012645Ac136ddd64DBA72\",\"amount\":\"1.250000000000000000\",\"chain\":\"ethereum\","
      "\"event\":\"WithdrawalCreated\"}}",
      i, i, i % users);
}

struct options {
  std::string mode;
  std::string system;
  std::int64_t rows = 1'000'000;
  int rate = 1000;
  int seconds = 30;
  int warmup = 5;
  int writers = 4;
  int instances = 1;
  std::string cdf;
};

options parse_options(int argc, char** argv) {
  if (argc < 2) throw std::invalid_argument("usage: peer_bench drain|latency --system S ... (see the file's header)");
  options o;
  o.mode = argv[1];
  for (int i = 2; i < argc; i += 2) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) throw std::invalid_argument(flag + " needs a value");
    const std::string value = argv[i + 1];
    auto number = [&] {
      std::size_t end = 0;
      const auto n = std::stoll(value, &end);
      if (end != value.size() || n <= 0) {
        throw std::invalid_argument(fmt::format("{} must be a positive whole number, got \"{}\"", flag, value));
      }
      return n;
    };
    if (flag == "--system") {
      o.system = value;
    } else if (flag == "--rows") {
      o.rows = number();
    } else if (flag == "--rate") {
      o.rate = static_cast<int>(number());
    } else if (flag == "--seconds") {
      o.seconds = static_cast<int>(number());
    } else if (flag == "--warmup") {
      o.warmup = static_cast<int>(number());
    } else if (flag == "--writers") {
      o.writers = static_cast<int>(number());
    } else if (flag == "--instances") {
      o.instances = static_cast<int>(number());
    } else if (flag == "--cdf") {
      o.cdf = value;
    } else {
      throw std::invalid_argument("unknown option " + flag);
    }
  }
  if (o.system.empty()) throw std::invalid_argument("--system is required: relay or bench/peers/<peer>");
  return o;
}

int drain(const options& o) {
  const auto topic = test_support::unique_name("bench_peer_drain");
  test_support::create_topic(topic, 6, bench::log_append_time);
  auto system = peer_bench::make_system(o.system, o.instances, topic);
  fmt::print("# system: {}\n", system->name());
  {
    pqxx::connection db(system->url());
    db.prepare("insert", system->insert_sql());
    const auto start = steady::now();
    for (std::int64_t first = 1; first <= o.rows; first += rows_per_transaction) {
      pqxx::work tx(db);
      for (std::int64_t i = first; i < first + rows_per_transaction && i <= o.rows; ++i) {
        tx.exec_prepared0("insert", key_of(i), payload_of(i));
      }
      tx.commit();
    }
    // Every system starts alike: its tables vacuumed and analysed (as autovacuum soon would after
    // such an insert) and no checkpoint owed for the inserts during the drain.
    pqxx::nontransaction tx(db);
    for (const auto& row : tx.exec_params("SELECT format('%I.%I', schemaname, tablename) FROM pg_tables "
                                          "WHERE schemaname = $1",
                                          system->schema())) {
      tx.exec0("VACUUM (ANALYZE) " + row[0].as<std::string>());
    }
    tx.exec0("CHECKPOINT");
    fmt::print("# inserted {} rows in {:.1f}s\n", o.rows, bench::seconds_since(start));
  }
  bench::arrival_recorder arrivals(topic, bench::message_id::seq_in_value);
  const auto log = fmt::format("/tmp/{}.log", test_support::unique_name("peer_drain"));
  fmt::print("# log: {}\n", log);
  const auto started_us = bench::now_us();
  peer_bench::running_system process(*system, log);
  const auto deadline = steady::now() + 30min;
  while (arrivals.distinct() < static_cast<std::size_t>(o.rows)) {
    process.require_running("during the drain");
    if (steady::now() > deadline) throw std::runtime_error("the drain did not finish within 30 minutes");
    process.sample();
    std::this_thread::sleep_for(50ms);
  }
  const auto [first_ms, last_ms] = arrivals.appended_ms();
  process.report(o.rows);
  process.stop();
  arrivals.stop();
  // The broker's append times (ms), so that a consumer's late first fetch does not count.
  const double from_start = static_cast<double>(last_ms * 1000 - started_us) / 1e6;
  const double streaming = static_cast<double>(last_ms - first_ms) / 1e3;
  const double startup = static_cast<double>(first_ms * 1000 - started_us) / 1e6;
  fmt::print(
      "# drained {} rows: {:.2f} s from the process start ({:.0f} rows/s), {:.2f} s from its first message "
      "({:.0f} rows/s), start-up {:.2f} s; {} messages received\n",
      o.rows, from_start, static_cast<double>(o.rows) / from_start, streaming, static_cast<double>(o.rows) / streaming,
      startup, arrivals.total());
  result("rows", o.rows);
  result("seconds_from_start", from_start);
  result("rows_per_s_from_start", static_cast<double>(o.rows) / from_start);
  result("seconds_streaming", streaming);
  result("rows_per_s", static_cast<double>(o.rows) / streaming);
  result("startup_s", startup);
  result("received", arrivals.total());
  return 0;
}

int latency(const options& o) {
  const auto topic = test_support::unique_name("bench_peer_latency");
  test_support::create_topic(topic, 6);
  auto system = peer_bench::make_system(o.system, o.instances, topic);
  fmt::print("# system: {}\n", system->name());
  const auto insert = system->insert_sql();
  bench::arrival_recorder arrivals(topic, bench::message_id::seq_in_value);
  const auto log = fmt::format("/tmp/{}.log", test_support::unique_name("peer_latency"));
  fmt::print("# log: {}\n", log);
  peer_bench::running_system process(*system, log);
  {
    // Row 0 first: the load starts once the system delivers (a JVM's start-up is not latency).
    pqxx::connection db(system->url());
    db.prepare("insert", insert);
    pqxx::work tx(db);
    tx.exec_prepared0("insert", key_of(0), payload_of(0));
    tx.commit();
    test_support::wait_until([&] { return arrivals.distinct() >= 1 || !process.running(); }, 180s, 20ms);
    process.require_running("before delivering a first row");
    if (arrivals.distinct() < 1) throw std::runtime_error(system->name() + " delivered nothing within 180 s");
  }

  std::vector<std::unique_ptr<pqxx::connection>> connections;  // one per writer
  for (int w = 0; w < o.writers; ++w) {
    connections.push_back(std::make_unique<pqxx::connection>(system->url()));
    connections.back()->prepare("insert", insert);
  }
  const auto writes = bench::paced_writers(
      o.rate, o.writers, o.warmup, o.seconds,
      [&](int w, std::int64_t i) {
        pqxx::work tx(*connections[static_cast<std::size_t>(w)]);
        tx.exec_prepared0("insert", key_of(i), payload_of(i));
        tx.commit();
        return bench::write_receipt{i, 0};
      },
      [&] { process.sample(); });
  const auto written_total = writes.size() + 1;  // and row 0
  test_support::wait_until([&] { return arrivals.distinct() >= written_total; }, 60s, 50ms);
  arrivals.stop();
  process.require_running("during the run");
  process.report(static_cast<std::int64_t>(written_total));
  process.stop();

  std::vector<std::int64_t> latencies;
  std::size_t measured = 0;
  for (const auto& w : writes) {
    if (!w.measured) continue;
    ++measured;
    const auto it = arrivals.first_arrival_us().find(w.receipt.id);
    if (it != arrivals.first_arrival_us().end()) latencies.push_back(it->second - w.committed_us);
  }
  const auto missing = static_cast<std::int64_t>(measured - latencies.size());
  fmt::print("# steady load: {} rows in {} s after a {} s warm-up ({:.0f} rows/s, {} writers), {} missing\n", measured,
             o.seconds, o.warmup, static_cast<double>(measured) / o.seconds, o.writers, missing);
  result("rows", static_cast<std::int64_t>(measured));
  result("rate", static_cast<double>(measured) / o.seconds);
  result("missing", missing);
  bench::print_latencies("commit_", "writer's commit returned -> consumer", latencies);
  if (!o.cdf.empty()) {
    std::sort(latencies.begin(), latencies.end());
    std::ofstream cdf(o.cdf);
    for (const auto us : latencies) cdf << fmt::format("{:.3f}\n", static_cast<double>(us) / 1000.0);
  }
  return missing == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const auto o = parse_options(argc, argv);
    if (o.mode == "drain") return drain(o);
    if (o.mode == "latency") return latency(o);
    std::cerr << "peer_bench: unknown mode \"" << o.mode << "\" (see bench/peers/peer_bench.cpp)\n";
    return 2;
  } catch (const std::invalid_argument& e) {
    std::cerr << "peer_bench: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "peer_bench: " << e.what() << "\n";
    return 1;
  }
}
