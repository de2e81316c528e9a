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

/// One system under test: where its rows go, how it starts and how it is cleaned up.
class system_under_test {
 public:
  virtual ~system_under_test() = default;
  virtual std::string name() const = 0;
  /// The database URL the rows are written through.
  virtual std::string url() const = 0;
  /// The schema its tables live in.
  virtual std::string schema() const = 0;
  /// One INSERT with $1 = key, $2 = payload.
  virtual std::string insert_sql() const = 0;
  /// Starts its processes (logs: LOG, LOG.2, ...).
  virtual std::vector<std::unique_ptr<test_support::child_process>> start(const std::string& log) = 0;
};

class our_relay final : public system_under_test {
 public:
  our_relay(std::string topic, int instances) : topic_(std::move(topic)), instances_(instances) {}
  std::string name() const override {
    return instances_ == 1 ? "outbox-relay" : fmt::format("outbox-relay x{}", instances_);
  }
  std::string url() const override { return schema_.url(); }
  std::string schema() const override {
    auto db = schema_.connect();
    return pqxx::nontransaction(db).exec1("SELECT current_schema()")[0].as<std::string>();
  }
  std::string insert_sql() const override {
    auto db = schema_.connect();
    return fmt::format(
        "INSERT INTO outbox_messages (topic, key, payload, headers) "
        "VALUES ({}, $1, convert_to($2, 'UTF8'), '{{\"event-type\": \"WithdrawalCreated\"}}')",
        db.quote(topic_));
  }
  std::vector<std::unique_ptr<test_support::child_process>> start(const std::string& log) override {
    std::vector<std::unique_ptr<test_support::child_process>> relays;
    for (int i = 1; i <= instances_; ++i) relays.push_back(start_one(i == 1 ? log : fmt::format("{}.{}", log, i)));
    return relays;
  }

 private:
  std::unique_ptr<test_support::child_process> start_one(const std::string& log) const {
    return std::make_unique<test_support::child_process>(
        test_support::bin_path("outbox-relay"),
        std::vector<std::string>{"--config", std::string(OUTBOX_SOURCE_DIR) + "/conf/relay.toml"},
        std::map<std::string, std::string>{
            {"DATABASE_URL", schema_.url()},
            {"KAFKA_BOOTSTRAP_SERVERS", test_support::require_env("KAFKA_BOOTSTRAP_SERVERS")},
            {"RELAY_HTTP_PORT", "0"}},
        log);
  }

 private:
  std::string topic_;
  int instances_;
  test_support::test_schema schema_;
};

/// A peer driven through bench/peers/<peer>/peer.sh.
class peer final : public system_under_test {
 public:
  peer(std::string folder, const std::string& topic)
      : folder_(std::move(folder)),
        env_{{"DATABASE_URL", test_support::require_env("DATABASE_URL")},
             {"KAFKA_BOOTSTRAP_SERVERS", test_support::require_env("KAFKA_BOOTSTRAP_SERVERS")},
             {"PEER_TOPIC", topic},
             {"PEER_SCHEMA", test_support::unique_name("bench_peer")}} {
    run("setup");
    run("schema");
    insert_sql_ = output_of("insert-sql");
    name_ = output_of("describe");
  }
  ~peer() override {
    try {
      run("teardown");
    } catch (const std::exception& e) {
      fmt::print("# {}: teardown: {}\n", folder_, e.what());
    }
  }
  std::string name() const override { return name_; }
  std::string url() const override { return env_.at("DATABASE_URL"); }
  std::string schema() const override { return env_.at("PEER_SCHEMA"); }
  std::string insert_sql() const override { return insert_sql_; }
  std::vector<std::unique_ptr<test_support::child_process>> start(const std::string& log) override {
    std::vector<std::unique_ptr<test_support::child_process>> one;
    one.push_back(std::make_unique<test_support::child_process>(
        "/bin/bash", std::vector<std::string>{script(), "start"}, env_, log));
    return one;
  }

 private:
  std::string script() const { return folder_ + "/peer.sh"; }
  /// Runs `peer.sh ACTION` to the end; throws with its output when it fails.
  void run(const std::string& action) const {
    const auto log = fmt::format("/tmp/{}.log", test_support::unique_name("peer_" + action));
    test_support::child_process step("/bin/bash", {script(), action}, env_, log);
    const auto code = step.wait(15min);
    if (action == "teardown" && code == 2) return;  // a peer without a teardown
    if (code != 0) throw std::runtime_error(fmt::format("{} {} failed:\n{}", script(), action, step.log()));
  }
  /// The standard output of `peer.sh ACTION`, without its last newline.
  std::string output_of(const std::string& action) const {
    std::string command;
    for (const auto& [name, value] : env_) command += fmt::format("{}='{}' ", name, value);
    command += fmt::format("/bin/bash '{}' {}", script(), action);
    std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
    if (!pipe) throw std::runtime_error("cannot run " + command);
    std::string out;
    std::array<char, 4096> buffer{};
    for (std::size_t n; (n = fread(buffer.data(), 1, buffer.size(), pipe.get())) > 0;) out.append(buffer.data(), n);
    if (pclose(pipe.release()) != 0) throw std::runtime_error(fmt::format("{} {} failed", script(), action));
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
  }

  std::string folder_;
  std::map<std::string, std::string> env_;
  std::string insert_sql_;
  std::string name_;
};

std::unique_ptr<system_under_test> make_system(const options& o, const std::string& topic) {
  if (o.system == "relay") return std::make_unique<our_relay>(topic, o.instances);
  if (o.instances != 1) throw std::invalid_argument("--instances: only the relay runs as several instances here");
  return std::make_unique<peer>(o.system, topic);
}

/// A started system's processes: whether they run, peak RSS while they run (the largest one's),
/// their CPU together at the end, and a stop.
class running_system {
 public:
  running_system(system_under_test& system, const std::string& log) : name_(system.name()) {
    processes_ = system.start(log);
  }
  running_system(const running_system&) = delete;
  running_system& operator=(const running_system&) = delete;
  ~running_system() { stop(); }

  /// Throws with the logs when a process is gone.
  void require_running(std::string_view during) {
    for (auto& p : processes_) {
      if (!p->running()) throw std::runtime_error(fmt::format("{} exited {}:\n{}", name_, during, p->log()));
    }
  }
  bool running() {
    return std::all_of(processes_.begin(), processes_.end(), [](auto& p) { return p->running(); });
  }
  void sample() {
    for (auto& p : processes_) peak_rss_kib_ = std::max(peak_rss_kib_, bench::proc_status_kib(p->pid(), "VmRSS"));
  }
  void report(std::int64_t rows) {
    double cpu = 0;
    for (auto& p : processes_) {
      peak_rss_kib_ = std::max(peak_rss_kib_, bench::proc_status_kib(p->pid(), "VmHWM"));
      cpu += bench::proc_cpu_seconds(p->pid());
    }
    fmt::print("# peak RSS {:.1f} MiB, CPU {:.2f} s ({:.1f} s per 1M rows)\n",
               static_cast<double>(peak_rss_kib_) / 1024, cpu, cpu * 1e6 / static_cast<double>(rows));
    result("peak_rss_mib", static_cast<double>(peak_rss_kib_) / 1024);
    result("cpu_s", cpu);
    result("cpu_s_per_1m", cpu * 1e6 / static_cast<double>(rows));
  }
  void stop() {
    for (auto& p : processes_) p->signal(SIGTERM);
    for (auto& p : processes_) {
      if (!p->wait(60s)) {
        p->signal(SIGKILL);
        p->wait(10s);
      }
    }
    processes_.clear();
  }

 private:
  std::string name_;
  std::vector<std::unique_ptr<test_support::child_process>> processes_;
  std::int64_t peak_rss_kib_ = 0;
};

int drain(const options& o) {
  const auto topic = test_support::unique_name("bench_peer_drain");
  test_support::create_topic(topic, 6, bench::log_append_time);
  auto system = make_system(o, topic);
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
  running_system process(*system, log);
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
  auto system = make_system(o, topic);
  fmt::print("# system: {}\n", system->name());
  const auto insert = system->insert_sql();
  bench::arrival_recorder arrivals(topic, bench::message_id::seq_in_value);
  const auto log = fmt::format("/tmp/{}.log", test_support::unique_name("peer_latency"));
  fmt::print("# log: {}\n", log);
  running_system process(*system, log);
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

  struct written {
    std::int64_t seq;
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
      pqxx::connection db(system->url());
      db.prepare("insert", insert);
      auto& out = per_writer[static_cast<std::size_t>(w)];
      auto next = start + period * w / o.writers;  // staggered, so that rows arrive evenly
      while (next < end) {
        std::this_thread::sleep_until(next);
        const std::int64_t i = sequence.fetch_add(1) + 1;
        pqxx::work tx(db);
        tx.exec_prepared0("insert", key_of(i), payload_of(i));
        tx.commit();
        out.push_back({i, bench::now_us(), next >= measured_from});
        next += period;
      }
    });
  }
  while (steady::now() < end) {
    process.sample();
    std::this_thread::sleep_for(100ms);
  }
  for (auto& t : writers) t.join();
  const auto written_total = static_cast<std::size_t>(sequence.load()) + 1;  // and row 0
  test_support::wait_until([&] { return arrivals.distinct() >= written_total; }, 60s, 50ms);
  arrivals.stop();
  process.require_running("during the run");
  process.report(static_cast<std::int64_t>(written_total));
  process.stop();

  std::vector<std::int64_t> latencies;
  std::size_t measured = 0;
  for (const auto& list : per_writer) {
    for (const auto& w : list) {
      if (!w.measured) continue;
      ++measured;
      const auto it = arrivals.first_arrival_us().find(w.seq);
      if (it != arrivals.first_arrival_us().end()) latencies.push_back(it->second - w.committed_us);
    }
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
