#include "peer_systems.hpp"

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include <fmt/format.h>
#include <pqxx/pqxx>

#include "bench_support.hpp"

namespace peer_bench {

using namespace std::chrono_literals;

namespace {

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
  /// The standard output of `peer.sh ACTION`, without its last newline; throws with its output
  /// when it fails. The environment goes to the child as variables and the arguments as
  /// arguments: nothing is quoted into a shell command line.
  std::string output_of(const std::string& action) const {
    const auto name = test_support::unique_name("peer_" + action);
    const auto out_path = fmt::format("/tmp/{}.out", name);
    const auto log = fmt::format("/tmp/{}.log", name);
    test_support::child_process step(
        "/bin/bash", {"-c", R"(exec /bin/bash "$0" "$1" >"$2")", script(), action, out_path}, env_, log);
    const auto code = step.wait(5min);
    std::ifstream in(out_path);
    std::string out((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::remove(out_path.c_str());
    if (code != 0) throw std::runtime_error(fmt::format("{} {} failed:\n{}{}", script(), action, out, step.log()));
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
  }

  std::string folder_;
  std::map<std::string, std::string> env_;
  std::string insert_sql_;
  std::string name_;
};

}  // namespace

std::unique_ptr<system_under_test> make_system(const std::string& system, int instances, const std::string& topic) {
  if (system == "relay") return std::make_unique<our_relay>(topic, instances);
  if (instances != 1) throw std::invalid_argument("--instances: only the relay runs as several instances here");
  return std::make_unique<peer>(system, topic);
}

running_system::running_system(system_under_test& system, const std::string& log) : name_(system.name()) {
  processes_ = system.start(log);
}

void running_system::require_running(std::string_view during) {
  for (auto& p : processes_) {
    if (!p->running()) throw std::runtime_error(fmt::format("{} exited {}:\n{}", name_, during, p->log()));
  }
}

bool running_system::running() {
  return std::all_of(processes_.begin(), processes_.end(), [](auto& p) { return p->running(); });
}

void running_system::sample() {
  for (auto& p : processes_) peak_rss_kib_ = std::max(peak_rss_kib_, bench::proc_status_kib(p->pid(), "VmRSS"));
}

void running_system::report(std::int64_t rows) {
  double cpu = 0;
  for (auto& p : processes_) {
    peak_rss_kib_ = std::max(peak_rss_kib_, bench::proc_status_kib(p->pid(), "VmHWM"));
    cpu += bench::proc_cpu_seconds(p->pid());
  }
  fmt::print("# peak RSS {:.1f} MiB, CPU {:.2f} s ({:.1f} s per 1M rows)\n", static_cast<double>(peak_rss_kib_) / 1024,
             cpu, cpu * 1e6 / static_cast<double>(rows));
  bench::result("peak_rss_mib", static_cast<double>(peak_rss_kib_) / 1024);
  bench::result("cpu_s", cpu);
  bench::result("cpu_s_per_1m", cpu * 1e6 / static_cast<double>(rows));
}

void running_system::stop() {
  for (auto& p : processes_) p->signal(SIGTERM);
  for (auto& p : processes_) {
    if (!p->wait(60s)) {
      p->signal(SIGKILL);
      p->wait(10s);
    }
  }
  processes_.clear();
}

}  // namespace peer_bench
