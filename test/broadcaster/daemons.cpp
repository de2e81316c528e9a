// broadcaster_harness.hpp: the daemons as child processes.
#include "broadcaster_harness.hpp"

#include <signal.h>

#include <regex>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "http_client.hpp"

namespace broadcaster_itest {

// ------------------------------------------------------------------ processes

std::string config_path(std::string_view name) { return fmt::format("{}/conf/{}.toml", OUTBOX_SOURCE_DIR, name); }

daemon_process::daemon_process(std::string binary, std::string config, std::map<std::string, std::string> env,
                               std::string label)
    : log_path_(test_support::new_log_path(label)) {
  process_ = std::make_unique<test_support::child_process>(test_support::bin_path(binary),
                                                           std::vector<std::string>{"--config", config_path(config)},
                                                           std::move(env), log_path_);
}

void daemon_process::kill() {
  process_->signal(SIGKILL);
  process_->wait(10s);
}

std::uint16_t daemon_process::http_port(std::chrono::milliseconds timeout) {
  if (!port_) port_ = test_support::wait_for_http_port(*process_, timeout);
  return *port_;
}

std::string daemon_process::metrics() {
  test_support::http_client client("127.0.0.1", http_port(), 5s);
  const auto response = client.get("/metrics");
  INFO("GET /metrics of pid " << pid() << " (log " << log_path_ << ")");
  REQUIRE(response.status == 200);
  return response.body;
}

double daemon_process::metric(std::string_view sample) {
  const std::string text = metrics();
  const auto value = test_support::metric_value(text, sample);
  INFO("metric " << sample << " in:\n" << text);
  REQUIRE(value.has_value());
  return *value;
}

double daemon_process::rpc_calls(std::string_view method) {
  return test_support::metric_value(metrics(), fmt::format("broadcaster_rpc_calls_total{{method=\"{}\"}}", method))
      .value_or(0);
}

std::map<std::string, std::string> worker_environment(const worker_setup& setup) {
  std::map<std::string, std::string> env{
      {"DATABASE_URL", setup.schema->url()},
      {"KAFKA_BOOTSTRAP_SERVERS", test_support::require_env("KAFKA_BOOTSTRAP_SERVERS")},
      {"REDIS_URL", test_support::require_env("REDIS_URL")},
      {"ETH_RPC_URL", test_support::require_env("ETH_RPC_URL")},
      {"REDIS_MQ_TYPE", setup.mq},
      {"BROADCASTER_SOURCE_MODE", "events"},
      {"BROADCASTER_CONSUMER_TOPIC", setup.topic},
      {"BROADCASTER_CONSUMER_GROUP", setup.group},
      {"BROADCASTER_CONSUMER_DLQ_TOPIC", setup.dlq_topic},
      {"BROADCASTER_SIGNING_KEY", setup.wallet->key_hex},
      {"BROADCASTER_HTTP_PORT", "0"},
      {"BROADCASTER_LOG_LEVEL", "info"},
      // Test pacing only: confirmations and retries come round quickly.
      {"BROADCASTER_CHAIN_CONFIRM_POLL_INTERVAL", "100ms"},
      {"BROADCASTER_CONSUMER_RETRY_BACKOFF_MAX", "1s"},
  };
  for (const auto& [name, value] : setup.extra_env) env[name] = value;
  return env;
}

std::unique_ptr<daemon_process> start_worker(const worker_setup& setup, std::string label) {
  auto worker = std::make_unique<daemon_process>("broadcaster-worker", "broadcaster", worker_environment(setup),
                                                 std::move(label));
  const std::string mode = setup.mq == "redis" ? "MQ Mode: Redis Stream Consumer" : "MQ Mode: Kafka Consumer";
  worker->http_port();
  test_support::wait_until([&] { return worker->log().find(mode) != std::string::npos || !worker->running(); }, 30s);
  INFO("broadcaster-worker log " << worker->log_path() << ":\n" << worker->log());
  REQUIRE(worker->running());
  REQUIRE(worker->log().find(mode) != std::string::npos);
  return worker;
}

relay_to_chain::relay_to_chain(const test_support::test_schema& schema, std::string_view label,
                               const chain::uint256& funding)
    : group(test_support::unique_name(fmt::format("{}_group", label))),
      dlq(test_support::unique_name(fmt::format("{}_dlq", label))),
      node(connect_node()),
      wallet(funded_hot_wallet(*node, funding)) {
  auto db = schema.connect();
  make_withdrawal_ids_unique(db);
  test_support::create_topic(topic, 6);
  // The topic is shared: on a long-lived broker it holds every earlier run's events. The worker's
  // new group starts at its end; this test's events are published later, by the relay below.
  const auto ends = test_support::end_offsets(topic);
  const auto partitions = static_cast<int>(ends.size());
  test_support::commit_offsets(group, topic, ends);
  test_support::create_topic(dlq, 1);
  worker = start_worker({&schema, &wallet, topic, group, dlq, "kafka", {}});
  REQUIRE(wait_group_assigned(group, topic, 1, partitions));
  relay = std::make_unique<daemon_process>(
      "outbox-relay", "relay",
      std::map<std::string, std::string>{
          {"DATABASE_URL", schema.url()},
          {"KAFKA_BOOTSTRAP_SERVERS", test_support::require_env("KAFKA_BOOTSTRAP_SERVERS")},
          {"REDIS_MQ_TYPE", "kafka"},
          {"RELAY_HTTP_PORT", "0"},
          {"RELAY_LOG_LEVEL", "info"}},
      fmt::format("relay-{}", label));
}

bool wait_group_assigned(const std::string& group, const std::string& topic, std::size_t members, int partitions,
                         std::chrono::milliseconds timeout) {
  return test_support::wait_until(
      [&] {
        test_support::group_description description;
        try {
          description = test_support::describe_group(group, 5s);
        } catch (const std::exception&) {
          return false;  // the coordinator may not know the group yet
        }
        if (description.state != "Stable" || description.members.size() != members) return false;
        std::set<std::int32_t> covered;
        for (const auto& member : description.members) {
          std::size_t mine = 0;
          for (const auto& [t, p] : member.assignment) {
            if (t == topic) {
              covered.insert(p);
              ++mine;
            }
          }
          if (mine == 0) return false;
        }
        return covered.size() == static_cast<std::size_t>(partitions);
      },
      timeout, 200ms);
}

std::map<std::int64_t, int> received_ids(const std::string& log) {
  static const std::regex line("收到提现事件 id=(\\d+)");
  std::map<std::int64_t, int> out;
  for (auto it = std::sregex_iterator(log.begin(), log.end(), line); it != std::sregex_iterator(); ++it) {
    ++out[std::stoll((*it)[1].str())];
  }
  return out;
}

}  // namespace broadcaster_itest
