#pragma once
// Shared pieces of the outbox-relay integration suites (*_itest.cpp in this folder): start real
// outbox-relay processes on a test schema, fill the outbox with SQL, read back what the broker got.
// Not thread-safe unless a function says so; every call that waits takes a deadline.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <pqxx/connection>

#include "common/redis.hpp"
#include "http_client.hpp"
#include "test_support.hpp"

namespace relay_itest {

using namespace std::chrono_literals;

/// An outbox-relay child process: `--config <repo>/conf/relay.toml`, DATABASE_URL = the schema's
/// URL, the broker endpoints from the environment, RELAY_HTTP_PORT=0, RELAY_LOG_LEVEL=info,
/// REDIS_MQ_TYPE=kafka; `overrides` replace or add variables. Output goes to its own log file
/// under /tmp (kept after the test for post-mortems). SIGKILLed at destruction if still running.
class relay_process {
 public:
  relay_process(const test_support::test_schema& schema, const std::map<std::string, std::string>& overrides = {},
                std::vector<std::string> args = {});

  int pid() const noexcept { return process_->pid(); }
  const std::string& log_path() const noexcept { return log_path_; }
  std::string log() const { return process_->log(); }
  bool log_contains(std::string_view text) const { return process_->log_contains(text); }
  bool running() { return process_->running(); }
  void signal(int signo) const { process_->signal(signo); }
  std::optional<int> wait(std::chrono::milliseconds timeout) { return process_->wait(timeout); }

  /// True once the log says `relay ready`; false if the process exited or `timeout` passed.
  bool wait_ready(std::chrono::milliseconds timeout = 30s);
  /// The operations port from the `listening on http://<address>:<port>` log line (waits for it;
  /// throws std::runtime_error with the log when it does not come within `timeout`).
  std::uint16_t http_port(std::chrono::milliseconds timeout = 30s);
  /// GET `target` on the operations port; throws std::runtime_error on failure or timeout.
  test_support::http_response http_get(const std::string& target);
  /// SIGKILL and reap.
  void kill();

 private:
  std::string log_path_;
  std::unique_ptr<test_support::child_process> process_;
};

/// The default relay environment for `schema` (what relay_process starts with).
std::map<std::string, std::string> relay_environment(const test_support::test_schema& schema);

/// <repo>/conf/relay.toml.
std::string relay_config_path();

/// Inserts `count` rows into outbox_messages in ONE statement (one transaction). Row i
/// (1..count) gets key `key_sql` (an SQL expression over the integer `i`, e.g. "'k' || (i % 200)"
/// or "NULL"), payload "payload-<seq>" and header test-seq=<seq>, where seq = `first_seq` + i - 1.
/// Ids ascend with i. Returns {id, key} of the inserted rows, in id order.
struct inserted_row {
  std::int64_t id = 0;
  std::optional<std::string> key;
};
std::vector<inserted_row> insert_rows(pqxx::connection& db, const std::string& topic, int count,
                                      const std::string& key_sql = "'k' || (i % 200)", std::int64_t first_seq = 1);

/// SELECT count(*) FROM outbox_messages.
std::int64_t pending_rows(pqxx::connection& db);
/// SELECT count(*) FROM outbox_dead_letters.
std::int64_t dead_letter_rows(pqxx::connection& db);
/// Ids still in outbox_messages.
std::set<std::int64_t> pending_ids(pqxx::connection& db);

/// Sum of the high watermarks of every partition of `topic` (= messages ever produced to a fresh topic).
std::int64_t topic_message_count(const std::string& topic);
/// Every message of `topic`, from the beginning; fails the test if fewer than topic_message_count()
/// arrive within `timeout`. Call it once the producers are done.
std::vector<test_support::consumed_message> read_all(const std::string& topic, std::chrono::milliseconds timeout = 90s);

/// Every entry of the Redis stream `stream`, in stream order, as a consumed message: topic = the
/// stream, partition 0, offset = position, key and payload from the entry's `key` and `payload`
/// fields (no `key` field: nullopt), every other field (`outbox-id`, `headers`) in headers.
std::vector<test_support::consumed_message> read_stream(common::redis::connection& redis, const std::string& stream);

/// The `outbox-id` header as a number; fails the test when it is missing or not a decimal.
std::int64_t outbox_id(const test_support::consumed_message& message);

/// What reached the broker compared with what was inserted.
struct delivery_summary {
  std::size_t messages = 0;              // messages read
  std::map<std::int64_t, int> copies;    // outbox id -> how many times it was published
  std::vector<std::int64_t> missing;     // expected ids never published
  std::vector<std::int64_t> unexpected;  // published ids that were not expected
  std::size_t duplicates = 0;            // extra copies: sum over ids of (copies - 1)
};
delivery_summary summarize(const std::vector<test_support::consumed_message>& messages,
                           const std::vector<inserted_row>& expected);

/// Waits until outbox_messages is empty.
bool wait_drained(pqxx::connection& db, std::chrono::milliseconds timeout);

/// SIGTERM, then requires exit code 0 within 30 s.
void stop_gracefully(relay_process& relay);

/// Per-key order as consumers see it: for every key, the outbox ids at their FIRST appearance must
/// ascend (re-sends of an earlier id are allowed anywhere).
struct order_report {
  std::size_t violations = 0;
  std::size_t split_keys = 0;  // keys whose messages landed in more than one partition
  std::string first_violation;
};
order_report check_first_appearance_order(const std::vector<test_support::consumed_message>& messages);

/// Reads `topic` (up to `timeout`) and requires every row of `rows` delivered, nothing unexpected and
/// first appearances in id order per key; logs the counts under `what`.
void require_ordered_and_complete(const std::string& topic, const std::vector<inserted_row>& rows,
                                  const std::string& what, std::chrono::milliseconds timeout);

/// What most relay tests start from: a fresh schema, a connection to it, and a fresh topic with
/// `partitions` partitions (no topic when `partitions` is 0).
struct relay_setup {
  explicit relay_setup(std::string_view topic_prefix, int partitions = 6,
                       const std::map<std::string, std::string>& topic_config = {});
  test_support::test_schema schema;
  pqxx::connection db;
  std::string topic;
};

/// A sample of the relay's /metrics (see test_support::metric_value); nullopt when absent.
std::optional<double> relay_metric(relay_process& relay, std::string_view sample);

/// `walletctl ARGS...` against `schema`: its exit code (nullopt: no exit within 30 s) and output.
struct walletctl_result {
  std::optional<int> code;
  std::string output;
};
walletctl_result run_walletctl(const test_support::test_schema& schema, std::vector<std::string> args);

/// PostgreSQL backend pids of `relay`'s two sessions, as {main, claims} (application_name
/// outbox-relay[-standby]:<schema> and outbox-relay-claims:<schema>); 0 when not found.
std::pair<int, int> relay_backends(relay_process& relay, pqxx::connection& db);

/// Number of lines of `text` containing `needle` (case-insensitive).
std::size_t count_lines_containing(const std::string& text, const std::string& needle);

/// Stops Kafka for a test and starts it again when the test leaves, however it leaves.
class kafka_outage {
 public:
  kafka_outage();
  ~kafka_outage();
  kafka_outage(const kafka_outage&) = delete;
  kafka_outage& operator=(const kafka_outage&) = delete;
  /// Starts Kafka again (waits until it is ready). Idempotent.
  void end();

 private:
  bool down_ = false;
};

}  // namespace relay_itest
