#include "relay_harness.hpp"

#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <pqxx/pqxx>

namespace relay_itest {

std::string relay_config_path() { return std::string(OUTBOX_SOURCE_DIR) + "/conf/relay.toml"; }

std::map<std::string, std::string> relay_environment(const test_support::test_schema& schema) {
  return {
      {"DATABASE_URL", schema.url()},
      {"KAFKA_BOOTSTRAP_SERVERS", test_support::require_env("KAFKA_BOOTSTRAP_SERVERS")},
      {"REDIS_URL", test_support::require_env("REDIS_URL")},
      {"REDIS_MQ_TYPE", "kafka"},
      {"RELAY_HTTP_PORT", "0"},
      {"RELAY_LOG_LEVEL", "info"},
  };
}

relay_process::relay_process(const test_support::test_schema& schema,
                             const std::map<std::string, std::string>& overrides, std::vector<std::string> args)
    : log_path_(test_support::new_log_path("relay")) {
  auto env = relay_environment(schema);
  for (const auto& [name, value] : overrides) env[name] = value;
  std::vector<std::string> argv{"--config", relay_config_path()};
  argv.insert(argv.end(), args.begin(), args.end());
  process_ = std::make_unique<test_support::child_process>(test_support::bin_path("outbox-relay"), std::move(argv),
                                                           std::move(env), log_path_);
}

bool relay_process::wait_ready(std::chrono::milliseconds timeout) {
  test_support::wait_until([&] { return log_contains("relay ready") || !running(); }, timeout, 20ms);
  return log_contains("relay ready");
}

std::uint16_t relay_process::http_port(std::chrono::milliseconds timeout) {
  return test_support::wait_for_http_port(*process_, timeout);
}

test_support::http_response relay_process::http_get(const std::string& target) {
  test_support::http_client client("127.0.0.1", http_port(), 10s);
  return client.get(target);
}

void relay_process::kill() {
  process_->signal(SIGKILL);
  process_->wait(10s);
}

bool wait_drained(pqxx::connection& db, std::chrono::milliseconds timeout) {
  return test_support::wait_until([&] { return pending_rows(db) == 0; }, timeout, 100ms);
}

void stop_gracefully(relay_process& relay) {
  relay.signal(SIGTERM);
  const auto code = relay.wait(30s);
  INFO("relay log: " << relay.log_path());
  REQUIRE(code.has_value());
  CHECK(*code == 0);
}

namespace {

// Messages of each key, in topic order (by partition, then offset). A key maps to one partition,
// so within a key this is the order a consumer sees.
std::map<std::string, std::vector<const test_support::consumed_message*>> by_key(
    const std::vector<test_support::consumed_message>& messages) {
  std::map<std::string, std::vector<const test_support::consumed_message*>> keyed;
  for (const auto& m : messages) {
    if (m.key) keyed[*m.key].push_back(&m);
  }
  for (auto& [key, list] : keyed) {
    std::sort(list.begin(), list.end(), [](const auto* a, const auto* b) {
      return std::pair(a->partition, a->offset) < std::pair(b->partition, b->offset);
    });
  }
  return keyed;
}

}  // namespace

order_report check_first_appearance_order(const std::vector<test_support::consumed_message>& messages) {
  order_report report;
  for (const auto& [key, list] : by_key(messages)) {
    std::set<std::int32_t> partitions;
    std::set<std::int64_t> seen;
    std::int64_t last_first = 0;
    for (const auto* m : list) {
      partitions.insert(m->partition);
      const auto id = outbox_id(*m);
      if (!seen.insert(id).second) continue;  // a re-send: only first appearances carry the order
      if (id < last_first) {
        if (report.violations++ == 0) {
          report.first_violation = fmt::format("key {}: id {} first appears at {}/{} after id {}", key, id,
                                               m->partition, m->offset, last_first);
        }
      }
      last_first = std::max(last_first, id);
    }
    if (partitions.size() > 1) ++report.split_keys;
  }
  return report;
}

void require_ordered_and_complete(const std::string& topic, const std::vector<inserted_row>& rows,
                                  const std::string& what, std::chrono::milliseconds timeout) {
  const auto messages = read_all(topic, timeout);
  const auto summary = summarize(messages, rows);
  const auto order = check_first_appearance_order(messages);
  WARN(fmt::format("{}: {} rows, {} messages, {} duplicate copies, {} order violations", what, rows.size(),
                   summary.messages, summary.duplicates, order.violations));
  CHECK(summary.missing.empty());
  CHECK(summary.unexpected.empty());
  INFO(order.first_violation);
  CHECK(order.split_keys == 0);
  CHECK(order.violations == 0);
}

relay_setup::relay_setup(std::string_view topic_prefix, int partitions,
                         const std::map<std::string, std::string>& topic_config)
    : db(schema.connect()), topic(test_support::unique_name(topic_prefix)) {
  if (partitions > 0) test_support::create_topic(topic, partitions, topic_config);
}

std::optional<double> relay_metric(relay_process& relay, std::string_view sample) {
  return test_support::metric_value(relay.http_get("/metrics").body, sample);
}

walletctl_result run_walletctl(const test_support::test_schema& schema, std::vector<std::string> args) {
  test_support::child_process walletctl(test_support::bin_path("walletctl"), std::move(args),
                                        {{"DATABASE_URL", schema.url()}}, test_support::new_log_path("walletctl"));
  walletctl_result result;
  result.code = walletctl.wait(30s);
  result.output = walletctl.log();
  return result;
}

std::vector<test_support::consumed_message> read_stream(common::redis::connection& redis, const std::string& stream) {
  std::vector<test_support::consumed_message> out;
  std::string start = "-";
  for (;;) {
    const auto page = redis.command({"XRANGE", stream, start, "+", "COUNT", "1000"});
    REQUIRE(page.type == common::redis::reply::kind::array);
    if (page.elements.empty()) return out;
    for (const auto& entry : page.elements) {
      REQUIRE(entry.elements.size() == 2);
      test_support::consumed_message message;
      message.topic = stream;
      message.offset = static_cast<std::int64_t>(out.size());
      const auto& flat = entry.elements[1].elements;
      for (std::size_t i = 0; i + 1 < flat.size(); i += 2) {
        if (flat[i].text == "key") {
          message.key = flat[i + 1].text;
        } else if (flat[i].text == "payload") {
          message.payload = flat[i + 1].text;
        } else {
          message.headers[flat[i].text] = flat[i + 1].text;
        }
      }
      out.push_back(std::move(message));
    }
    start = "(" + page.elements.back().elements[0].text;
  }
}

std::pair<int, int> relay_backends(relay_process& relay, pqxx::connection& db) {
  std::pair<int, int> out{0, 0};
  for (const int pid : test_support::database_backends(relay.pid(), db)) {
    pqxx::nontransaction tx(db);
    const auto name = tx.exec_params1("SELECT application_name FROM pg_stat_activity WHERE pid = $1", pid)[0];
    if (name.is_null()) continue;
    const auto text = name.as<std::string>();
    if (text.rfind("outbox-relay-claims:", 0) == 0) {
      out.second = pid;
    } else if (text.rfind("outbox-relay", 0) == 0) {
      out.first = pid;
    }
  }
  return out;
}

std::vector<inserted_row> insert_rows(pqxx::connection& db, const std::string& topic, int count,
                                      const std::string& key_sql, std::int64_t first_seq) {
  pqxx::work tx(db);
  const auto result = tx.exec_params(
      "INSERT INTO outbox_messages (topic, key, payload, headers) "
      "SELECT $1, " +
          key_sql +
          ", convert_to('payload-' || (i + $3 - 1), 'UTF8'), "
          "       jsonb_build_object('test-seq', (i + $3 - 1)::text) "
          "FROM generate_series(1, $2::integer) AS i ORDER BY i RETURNING id, key",
      topic, count, first_seq);
  tx.commit();
  std::vector<inserted_row> rows;
  rows.reserve(result.size());
  for (const auto& r : result) {
    inserted_row row;
    row.id = r[0].as<std::int64_t>();
    if (!r[1].is_null()) row.key = r[1].as<std::string>();
    rows.push_back(std::move(row));
  }
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  return rows;
}

std::int64_t pending_rows(pqxx::connection& db) {
  pqxx::nontransaction tx(db);
  return tx.exec1("SELECT count(*) FROM outbox_messages")[0].as<std::int64_t>();
}

std::int64_t dead_letter_rows(pqxx::connection& db) {
  pqxx::nontransaction tx(db);
  return tx.exec1("SELECT count(*) FROM outbox_dead_letters")[0].as<std::int64_t>();
}

std::set<std::int64_t> pending_ids(pqxx::connection& db) {
  pqxx::nontransaction tx(db);
  std::set<std::int64_t> ids;
  for (const auto& r : tx.exec("SELECT id FROM outbox_messages")) ids.insert(r[0].as<std::int64_t>());
  return ids;
}

std::int64_t topic_message_count(const std::string& topic) {
  std::int64_t total = 0;
  for (const auto& [partition, end] : test_support::end_offsets(topic)) total += end;
  return total;
}

std::vector<test_support::consumed_message> read_all(const std::string& topic, std::chrono::milliseconds timeout) {
  const auto expected = topic_message_count(topic);
  auto messages = test_support::read_topic(topic, static_cast<std::size_t>(expected), timeout);
  INFO("topic " << topic << ": high watermarks say " << expected << " messages");
  REQUIRE(static_cast<std::int64_t>(messages.size()) >= expected);
  return messages;
}

std::int64_t outbox_id(const test_support::consumed_message& message) {
  const auto header = message.headers.find("outbox-id");
  INFO("message at " << message.topic << "/" << message.partition << "@" << message.offset);
  REQUIRE(header != message.headers.end());
  std::int64_t id = 0;
  const auto& text = header->second;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  INFO("outbox-id header \"" << text << "\"");
  REQUIRE(ec == std::errc{});
  REQUIRE(end == text.data() + text.size());
  return id;
}

delivery_summary summarize(const std::vector<test_support::consumed_message>& messages,
                           const std::vector<inserted_row>& expected) {
  delivery_summary summary;
  summary.messages = messages.size();
  for (const auto& m : messages) ++summary.copies[outbox_id(m)];
  std::set<std::int64_t> expected_ids;
  for (const auto& row : expected) {
    expected_ids.insert(row.id);
    if (!summary.copies.contains(row.id)) summary.missing.push_back(row.id);
  }
  for (const auto& [id, n] : summary.copies) {
    if (!expected_ids.contains(id)) summary.unexpected.push_back(id);
    summary.duplicates += static_cast<std::size_t>(n - 1);
  }
  return summary;
}

std::size_t count_lines_containing(const std::string& text, const std::string& needle) {
  auto lower = [](std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
  };
  const std::string wanted = lower(needle);
  std::istringstream lines(text);
  std::string line;
  std::size_t n = 0;
  while (std::getline(lines, line)) {
    if (lower(line).find(wanted) != std::string::npos) ++n;
  }
  return n;
}

kafka_outage::kafka_outage() {
  test_support::services("down", "kafka");
  down_ = true;
}

kafka_outage::~kafka_outage() {
  try {
    end();
  } catch (const std::exception& e) {
    // Other suites need the broker: shout, since a destructor cannot fail the test.
    fmt::print(stderr, "relay_itest: could not restart Kafka: {} (run `scripts/services up kafka`)\n", e.what());
  }
}

void kafka_outage::end() {
  if (!down_) return;
  test_support::services("up", "kafka");
  down_ = false;
}

}  // namespace relay_itest
