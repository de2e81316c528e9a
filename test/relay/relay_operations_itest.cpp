// outbox-relay as operators run it: under systemd (sd_notify), with a bad config, several instances
// sharing one database.

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "relay_harness.hpp"

namespace {

using namespace std::chrono_literals;
using relay_itest::relay_process;
using test_support::wait_until;

// The receiving end of $NOTIFY_SOCKET: an AF_UNIX datagram socket collecting every
// "NAME=value" assignment sent to it, in arrival order.
class notify_listener {
 public:
  notify_listener() : path_(std::filesystem::temp_directory_path() / (test_support::unique_name("notify") + ".sock")) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    REQUIRE(path_.string().size() < sizeof address.sun_path);
    std::copy_n(path_.string().c_str(), path_.string().size() + 1, address.sun_path);
    REQUIRE(::bind(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
    timeval tv{0, 100'000};  // recv wakes every 100 ms to see the stop flag
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    reader_ = std::thread([this] { run(); });
  }
  ~notify_listener() {
    stop_ = true;
    reader_.join();
    ::close(fd_);
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }
  notify_listener(const notify_listener&) = delete;
  notify_listener& operator=(const notify_listener&) = delete;

  std::string path() const { return path_.string(); }
  std::vector<std::string> assignments() const {
    std::lock_guard lock(mutex_);
    return assignments_;
  }
  std::size_t count(const std::string& assignment) const {
    const auto all = assignments();
    return static_cast<std::size_t>(std::count(all.begin(), all.end(), assignment));
  }
  /// Index of the first `prefix`… assignment at or after `from`, if any.
  std::optional<std::size_t> find(const std::string& prefix, std::size_t from = 0) const {
    const auto all = assignments();
    for (std::size_t i = from; i < all.size(); ++i) {
      if (all[i].rfind(prefix, 0) == 0) return i;
    }
    return std::nullopt;
  }

 private:
  void run() {
    char buffer[4096];
    while (!stop_) {
      const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) continue;
      std::istringstream lines(std::string(buffer, static_cast<std::size_t>(n)));
      std::string line;
      std::lock_guard lock(mutex_);
      while (std::getline(lines, line)) {
        if (!line.empty()) assignments_.push_back(line);
      }
    }
  }

  std::filesystem::path path_;
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  mutable std::mutex mutex_;
  std::vector<std::string> assignments_;
  std::thread reader_;
};

std::string write_file(const std::string& name, const std::string& text) {
  const auto path = std::filesystem::temp_directory_path() / test_support::unique_name(name);
  std::ofstream(path) << text;
  return path.string();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

struct exit_result {
  std::optional<int> code;
  std::string output;
};

// Runs outbox-relay with `args` and the default test environment plus `overrides`; waits for it to exit.
exit_result run_relay(const test_support::test_schema& schema, std::vector<std::string> args,
                      const std::map<std::string, std::string>& overrides = {}) {
  auto env = relay_itest::relay_environment(schema);
  for (const auto& [name, value] : overrides) env[name] = value;
  test_support::child_process relay(test_support::bin_path("outbox-relay"), std::move(args), std::move(env),
                                    test_support::new_log_path("relay_config"));
  exit_result result;
  result.code = relay.wait(20s);
  result.output = relay.log();
  return result;
}

}  // namespace

// Pins: a relay under systemd that never reports READY (unit stuck "activating"), misses watchdog
// pings (killed by systemd) or does not announce reload and stop.
TEST_CASE("relay systemd: READY, STATUS, WATCHDOG, RELOADING then READY on SIGHUP, STOPPING on SIGTERM",
          "[relay][integration][systemd]") {
  ::unsetenv("WATCHDOG_PID");  // the watchdog must be meant for the relay, not for this test process
  test_support::test_schema schema;
  notify_listener listener;
  relay_process relay(schema, {{"NOTIFY_SOCKET", listener.path()}, {"WATCHDOG_USEC", "2000000"}});
  INFO("relay log: " << relay.log_path());

  REQUIRE(wait_until([&] { return listener.count("READY=1") >= 1 || !relay.running(); }, 30s));
  REQUIRE(listener.count("READY=1") == 1);
  CHECK(relay.log_contains("relay ready"));
  const auto ready_at = *listener.find("READY=1");
  // WATCHDOG_USEC=2 s: a ping every second, so at least two within ~3 s of READY.
  CHECK(wait_until(
      [&] {
        std::size_t pings = 0;
        for (auto i = listener.find("WATCHDOG=1", ready_at); i; i = listener.find("WATCHDOG=1", *i + 1)) ++pings;
        return pings >= 2;
      },
      3500ms));
  CHECK(listener.find("STATUS=").has_value());

  relay.signal(SIGHUP);
  REQUIRE(wait_until([&] { return listener.count("READY=1") >= 2 || !relay.running(); }, 10s));
  const auto reloading = listener.find("RELOADING=1");
  REQUIRE(reloading.has_value());
  CHECK(listener.find("READY=1", *reloading + 1).has_value());  // READY=1 again after RELOADING=1

  relay.signal(SIGTERM);
  const auto code = relay.wait(30s);
  REQUIRE(code.has_value());
  CHECK(*code == 0);
  CHECK(wait_until([&] { return listener.find("STOPPING=1").has_value(); }, 2s));
  const auto all = listener.assignments();
  INFO("notifications: " << fmt::format("{}", fmt::join(all, " | ")));
  CHECK(listener.find("STOPPING=1").has_value());
}

// Pins: a typo in the config or an out-of-range override starting a relay with defaults instead of
// refusing to start (exit 2) and saying which key is wrong.
TEST_CASE("relay config errors: unknown keys and out-of-range values exit 2 naming the key",
          "[relay][integration][config]") {
  test_support::test_schema schema;
  const auto shipped = read_file(relay_itest::relay_config_path());
  REQUIRE_FALSE(shipped.empty());

  SECTION("the shipped conf/relay.toml passes --check-config") {
    const auto result = run_relay(schema, {"--config", relay_itest::relay_config_path(), "--check-config"});
    INFO(result.output);
    REQUIRE(result.code.has_value());
    CHECK(*result.code == 0);
  }
  SECTION("an unknown top-level key") {
    const auto path = write_file("relay_unknown_top.toml", "unknown_knob = true\n" + shipped);
    const auto result = run_relay(schema, {"--config", path});
    INFO(result.output);
    REQUIRE(result.code.has_value());
    CHECK(*result.code == 2);
    CHECK(result.output.find("unknown_knob") != std::string::npos);
  }
  SECTION("an unknown key inside [outbox]") {
    const auto path = write_file("relay_unknown_outbox.toml", "[outbox]\nbatch_sise = 100\n");
    const auto result = run_relay(schema, {"--config", path});
    INFO(result.output);
    REQUIRE(result.code.has_value());
    CHECK(*result.code == 2);
    CHECK(result.output.find("outbox.batch_sise") != std::string::npos);
  }
  SECTION("RELAY_OUTBOX_BATCH_SIZE=0") {
    const auto result =
        run_relay(schema, {"--config", relay_itest::relay_config_path()}, {{"RELAY_OUTBOX_BATCH_SIZE", "0"}});
    INFO(result.output);
    REQUIRE(result.code.has_value());
    CHECK(*result.code == 2);
    CHECK((result.output.find("outbox.batch_size") != std::string::npos ||
           result.output.find("RELAY_OUTBOX_BATCH_SIZE") != std::string::npos));
  }
  SECTION("RELAY_OUTBOX_BATCH_SIZE=10001") {
    const auto result =
        run_relay(schema, {"--config", relay_itest::relay_config_path()}, {{"RELAY_OUTBOX_BATCH_SIZE", "10001"}});
    INFO(result.output);
    REQUIRE(result.code.has_value());
    CHECK(*result.code == 2);
    CHECK((result.output.find("outbox.batch_size") != std::string::npos ||
           result.output.find("RELAY_OUTBOX_BATCH_SIZE") != std::string::npos));
  }
}

// Pins: two relays on one schema where one does all the work (or both claim the same partitions).
TEST_CASE("relay spread: two relays on one schema split the 256 partitions", "[relay][integration][spread]") {
  test_support::test_schema schema;
  relay_process first(schema);
  relay_process second(schema);
  for (auto* relay : {&first, &second}) {
    INFO("relay log: " << relay->log_path());
    REQUIRE(relay->wait_ready());
  }
  // Each relay logs `listening on http://<address>:<port>` for its ephemeral operations port.
  test_support::http_client first_http("127.0.0.1", first.http_port(), 5s);
  test_support::http_client second_http("127.0.0.1", second.http_port(), 5s);

  auto owned = [](test_support::http_client& http) -> std::optional<double> {
    const auto reply = http.get("/metrics");
    if (reply.status != 200) return std::nullopt;
    return test_support::metric_value(reply.body, "relay_partitions_owned");
  };
  std::optional<double> a;
  std::optional<double> b;
  const bool balanced = wait_until(
      [&] {
        a = owned(first_http);
        b = owned(second_http);
        return a && b && *a > 0 && *b > 0 && *a + *b == 256;
      },
      30s, 250ms);
  INFO("relay_partitions_owned: " << a.value_or(-1) << " + " << b.value_or(-1));
  CHECK(balanced);
  WARN(fmt::format("spread: relay_partitions_owned {} and {}", a.value_or(-1), b.value_or(-1)));

  CHECK(first_http.get("/healthz").status == 200);
  CHECK(second_http.get("/healthz").status == 200);
  first.signal(SIGTERM);
  second.signal(SIGTERM);
  CHECK(first.wait(30s) == 0);
  CHECK(second.wait(30s) == 0);
}
