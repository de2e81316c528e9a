// The monitoring files against the real tool: Debian's Prometheus scrapes the three real daemons
// (started here on free ports, one test schema) with conf/monitoring/prometheus.yml and
// conf/monitoring/alerts.yml, while withdrawals go through the wallet API, the relay, Kafka, the
// broadcaster and anvil. Asked through Prometheus' HTTP API: every target is up, every metric the
// rules and the dashboard use exists, every dashboard query returns data, no relay alert fires
// while the relay runs, and stopping the relay (SIGSTOP) with a row pending fires
// OutboxBacklogWithoutRelay, which resolves once the relay runs again (SIGCONT).
//
// The rendered copies differ from the shipped files only where a test must: targets on the test's
// ports, 1 s scrape and evaluation intervals, every `for:` cut to 2 s. Exact thresholds and
// durations are covered by promtool's rule tests (monitoring_alert_rules).

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <set>
#include <sstream>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "broadcaster_harness.hpp"
#include "grpc_client.hpp"
#include "http_client.hpp"
#include "wallet_process.hpp"

using namespace broadcaster_itest;
using namespace std::chrono_literals;
using test_support::unique_name;

namespace {

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  REQUIRE(out.good());
}

/// `text` with `from` replaced by `to`; fails the test unless `from` occurs exactly once (the
/// shipped file changed shape: update this test with it).
std::string replace_once(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  INFO("replacing \"" << from << "\"");
  REQUIRE(at != std::string::npos);
  REQUIRE(text.find(from, at + 1) == std::string::npos);
  return text.replace(at, from.size(), to);
}

std::string url_encode(std::string_view text) {
  std::string out;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (std::isalnum(byte) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += c;
    } else {
      out += fmt::format("%{:02X}", byte);
    }
  }
  return out;
}

/// Lines printed by test/monitoring/monitoring_files.py `action` for this source tree.
std::vector<std::string> monitoring_files(const std::string& action) {
  test_support::child_process python(
      "/usr/bin/python3", {OUTBOX_SOURCE_DIR "/test/monitoring/monitoring_files.py", action, OUTBOX_SOURCE_DIR}, {},
      test_support::new_log_path("monitoring_files"));
  REQUIRE(python.wait(60s) == std::optional<int>(0));
  std::vector<std::string> lines;
  std::istringstream in(python.log());
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

/// Debian's prometheus on a free loopback port, its data in a fresh folder.
class prometheus_process {
 public:
  explicit prometheus_process(const std::filesystem::path& config, const std::filesystem::path& data)
      : port_(test_support::free_loopback_port()),
        log_path_(test_support::new_log_path("prometheus")),
        process_("/usr/bin/prometheus",
                 {"--config.file=" + config.string(), "--storage.tsdb.path=" + data.string(),
                  fmt::format("--web.listen-address=127.0.0.1:{}", port_), "--log.level=warn"},
                 {}, log_path_),
        http_("127.0.0.1", port_, 10s) {}

  const std::string& log_path() const noexcept { return log_path_; }

  bool wait_ready() {
    return test_support::wait_until(
        [&] {
          try {
            return http_.get("/-/ready").status == 200;
          } catch (const std::exception&) {
            return false;
          }
        },
        30s, 200ms);
  }

  /// GET /api/v1/<path>; the `data` member of a successful answer.
  nlohmann::json api(const std::string& path) {
    const auto answer = http_.get("/api/v1/" + path);
    INFO("GET /api/v1/" << path << " -> " << answer.status << " " << answer.body);
    REQUIRE(answer.status == 200);
    const auto body = nlohmann::json::parse(answer.body);
    REQUIRE(body.at("status") == "success");
    return body.at("data");
  }

  /// The instant query's result vector (empty when the expression selects nothing).
  nlohmann::json query(const std::string& expr) { return api("query?query=" + url_encode(expr)).at("result"); }

  /// Each rule's name, health and state, and the `up` series: what a failing alert check prints.
  std::string diagnosis() {
    std::string out;
    const auto rules = api("rules");  // kept alive for the loop: a range over a temporary's member dangles
    for (const auto& group : rules.at("groups")) {
      for (const auto& rule : group.at("rules")) {
        out += fmt::format("{} {} {} {}\n", rule.at("name").get<std::string>(), rule.at("health").get<std::string>(),
                           rule.value("state", std::string("?")), rule.value("lastError", std::string()));
      }
    }
    return out + "up: " + query("up").dump();
  }

  /// Names of the alerts in state `state` (firing or pending).
  std::set<std::string> alerts(const std::string& state) {
    std::set<std::string> names;
    const auto answer = api("alerts");
    for (const auto& alert : answer.at("alerts")) {
      if (alert.at("state").get<std::string>() == state)
        names.insert(alert.at("labels").at("alertname").get<std::string>());
    }
    return names;
  }

 private:
  std::uint16_t port_;
  std::string log_path_;
  test_support::child_process process_;
  test_support::http_client http_;
};

/// A folder removed (with what is in it) at destruction. Declared before the processes writing into
/// it, so they are gone first.
struct scratch_dir {
  explicit scratch_dir(std::filesystem::path p) : path(std::move(p)) {}
  ~scratch_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;
  std::filesystem::path path;
};

std::string names_of(const std::set<std::string>& names) {
  return names.empty() ? std::string("none") : fmt::format("{}", fmt::join(names, ", "));
}

}  // namespace

TEST_CASE(
    "Prometheus scrapes the daemons: targets up, the rules' and dashboard's metrics exist, a stopped relay "
    "with rows pending fires the backlog alert",
    "[monitoring][prometheus]") {
  test_support::test_schema schema;
  auto db = schema.connect();
  // wallet-service's topic, shared with other tests: a consumer group of its own.
  relay_to_chain pipeline(schema, "monitoring", to_wei("1"));
  auto& worker = pipeline.worker;
  auto& relay = *pipeline.relay;
  wallet_test::wallet_process api(schema.url(), {{"WALLET_API_ENABLE_DEPOSITS", "true"}});
  INFO("logs: worker " << worker->log_path() << " relay " << relay.log_path()
                       << " (the wallet's: wallet_*.log beside them)");

  // The shipped files, pointed at this test's daemons and run fast.
  const scratch_dir scratch(std::filesystem::temp_directory_path() / unique_name("prometheus"));
  const auto& work = scratch.path;
  std::filesystem::create_directories(work / "data");
  auto rules = read_text(OUTBOX_SOURCE_DIR "/conf/monitoring/alerts.yml");
  rules = std::regex_replace(rules, std::regex(R"((\n\s+for:) \S+)"), "$1 2s");
  write_text(work / "alerts.yml", rules);
  auto config = read_text(OUTBOX_SOURCE_DIR "/conf/monitoring/prometheus.yml");
  config = replace_once(config, "scrape_interval: 15s", "scrape_interval: 1s");
  config = replace_once(config, "scrape_timeout: 5s", "scrape_timeout: 1s");
  config = replace_once(config, "evaluation_interval: 15s", "evaluation_interval: 1s");
  config = replace_once(config, "/usr/share/wallet-outbox/monitoring/alerts.yml", (work / "alerts.yml").string());
  config = replace_once(config, "127.0.0.1:8080", fmt::format("127.0.0.1:{}", api.port()));
  config = replace_once(config, "127.0.0.1:9101", fmt::format("127.0.0.1:{}", relay.http_port()));
  config = replace_once(config, "127.0.0.1:9102", fmt::format("127.0.0.1:{}", worker->http_port()));
  write_text(work / "prometheus.yml", config);
  prometheus_process prometheus(work / "prometheus.yml", work / "data");
  INFO("prometheus log: " << prometheus.log_path() << ", files: " << work);
  REQUIRE(prometheus.wait_ready());

  // Traffic through all three daemons.
  // A client per call: a keep-alive connection the wallet closed while idle fails the next request.
  auto http = [&] { return test_support::http_client("127.0.0.1", api.port(), 10s); };
  constexpr std::int64_t user_id = 11;
  REQUIRE(http().post_json(fmt::format("/v1/accounts/{}/deposits", user_id), R"({"amount":"1"})").status / 100 == 2);
  auto withdraw = [&] {
    const nlohmann::json body{{"user_id", user_id},
                              {"to_address", random_address().to_checksum_string()},
                              {"amount", "0.001"},
                              {"chain", "eth"}};
    const auto created = http().post_json("/v1/withdrawals", body.dump(), {{"Idempotency-Key", unique_name("mon")}});
    INFO("POST /v1/withdrawals -> " << created.status << " " << created.body);
    REQUIRE(created.status == 201);
    return nlohmann::json::parse(created.body).at("withdrawal_id").get<std::int64_t>();
  };
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(withdraw());
  // And over gRPC: the wallet_grpc_* series exist once a call was made.
  wallet_test::grpc_client grpc(api.grpc_target());
  for (int i = 0; i < 2; ++i) {
    const auto reply =
        grpc.create_withdrawal(user_id, random_address().to_checksum_string(), "0.001", unique_name("g"));
    INFO("gRPC CreateWithdrawal: " << reply.message());
    REQUIRE(reply.ok());
    ids.push_back(reply.response.withdrawal_id());
  }
  REQUIRE(wait_all_status(db, ids, "confirmed", 120s));

  // Every target up.
  {
    const bool up = test_support::wait_until(
        [&] {
          const auto targets = prometheus.api("targets").at("activeTargets");
          std::set<std::string> healthy;
          for (const auto& t : targets) {
            if (t.at("health") == "up") healthy.insert(t.at("labels").at("job").get<std::string>());
          }
          return targets.size() == 3 &&
                 healthy == std::set<std::string>{"wallet-service", "outbox-relay", "broadcaster-worker"};
        },
        30s, 500ms);
    INFO("targets: " << prometheus.api("targets").at("activeTargets").dump(1));
    REQUIRE(up);
  }

  // Every metric the rules and the dashboard use exists.
  {
    // Every name the rules and the dashboard use, as monitoring_files.py derives it from the files.
    std::set<std::string> missing;
    std::set<std::string> pending_absent;
    const auto lines = monitoring_files("metrics");
    REQUIRE(lines.size() > 10);
    for (const auto& line : lines) {
      const auto space = line.find(' ');
      const auto name = line.substr(0, space);
      const bool pending = line.substr(space + 1) != "exported";  // pending or on-event
      const bool present = test_support::wait_until(
          [&] { return !prometheus.query(fmt::format("count({{__name__=\"{}\"}})", name)).empty(); },
          pending ? 2s : 20s, 500ms);
      if (!present) (pending ? pending_absent : missing).insert(name);
    }
    INFO("metrics the rules or the dashboard use that no daemon exports: " << names_of(missing));
    CHECK(missing.empty());
    // Pending: agreed in the shared metric contract, being added to the daemons in parallel.
    // On-event: no series until the event happens (monitoring_files.ON_EVENT).
    if (!pending_absent.empty()) WARN("pending or on-event metrics without series: " << names_of(pending_absent));
  }

  // Every dashboard query returns data (no "No data" panel).
  {
    std::set<std::string> pending_names;
    for (const auto& line : monitoring_files("metrics")) {
      if (!line.ends_with(" exported")) pending_names.insert(line.substr(0, line.find(' ')));
    }
    std::set<std::string> no_data;
    for (const auto& line : monitoring_files("queries")) {
      const auto tab = line.find('\t');
      const auto title = line.substr(0, tab);
      const auto expr = line.substr(tab + 1);
      const bool uses_pending = std::any_of(pending_names.begin(), pending_names.end(),
                                            [&](const std::string& n) { return expr.find(n) != std::string::npos; });
      const bool data =
          test_support::wait_until([&] { return !prometheus.query(expr).empty(); }, uses_pending ? 1s : 20s, 500ms);
      if (!data && !uses_pending) no_data.insert(title + ": " + expr);
    }
    INFO("dashboard queries without data: " << names_of(no_data));
    CHECK(no_data.empty());
  }

  // While the relay runs, none of the relay alerts fires.
  const std::set<std::string> relay_alerts{"OutboxOldestPendingAge", "OutboxBacklogWithoutRelay", "RelayDown",
                                           "RelayPartitionsUnowned", "RelayBrokerDown",           "RelayDatabaseDown"};
  {
    const auto active = prometheus.alerts("firing");
    std::set<std::string> wrong;
    std::set_intersection(active.begin(), active.end(), relay_alerts.begin(), relay_alerts.end(),
                          std::inserter(wrong, wrong.end()));
    INFO("firing: " << names_of(active));
    CHECK(wrong.empty());
  }

  // Stop the only relay, then take a withdrawal: its outbox row waits. SIGSTOP rather than an exit:
  // the stopped relay keeps its port, which another test's daemon on this shared machine could
  // otherwise take, answering Prometheus' scrapes of "the relay" with up = 1.
  relay.signal(SIGSTOP);
  const auto waiting = withdraw();
  {
    pqxx::read_transaction tx(db);
    REQUIRE(tx.exec1("SELECT count(*) FROM outbox_messages")[0].as<int>() == 1);
  }
  const bool fired = test_support::wait_until(
      [&] { return prometheus.alerts("firing").contains("OutboxBacklogWithoutRelay"); }, 60s, 500ms);
  INFO("firing: " << names_of(prometheus.alerts("firing")) << "; pending: " << names_of(prometheus.alerts("pending")));
  INFO("rules:\n" << prometheus.diagnosis());
  REQUIRE(fired);
  CHECK(prometheus.alerts("firing").contains("RelayPartitionsUnowned"));

  // The relay runs again: the row is published and paid, and the alert resolves.
  relay.signal(SIGCONT);
  REQUIRE(wait_all_status(db, {waiting}, "confirmed", 120s));
  CHECK(test_support::wait_until([&] { return !prometheus.alerts("firing").contains("OutboxBacklogWithoutRelay"); },
                                 60s, 500ms));
}
