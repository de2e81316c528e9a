#pragma once
// Helpers for the integration suites (*_itest.cpp). Endpoints come from the environment that
// `scripts/services env` prints; nothing here hard-codes a host.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <pqxx/connection>

#include "common/database.hpp"

namespace common::redis {
class connection;
}

namespace test_support {

using namespace std::chrono_literals;

/// The variable's value; throws with a hint to `eval "$(scripts/services env)"` when unset.
std::string require_env(const char* name);

/// "<prefix>_<pid>_<n>": unique per process and call, safe as a schema, topic or group name.
std::string unique_name(std::string_view prefix);

/// Path of a daemon binary in build/bin.
std::string bin_path(std::string_view name);

/// A fresh path for a child process's log: /tmp/outbox-tests-<pid>/<label>_<pid>_<n>.log (kept after
/// the test for post-mortems).
std::string new_log_path(std::string_view label);

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released), for a
/// program that cannot listen on port 0 and report its port itself (e.g. Prometheus).
std::uint16_t free_loopback_port();

/// Polls `done` every `poll` until it returns true or `timeout` passes; returns its last answer.
bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout,
                std::chrono::milliseconds poll = 50ms);

/// A schema of its own with every migration applied (unless told otherwise), dropped (CASCADE) at
/// destruction.
/// Daemons started with url() see only this schema (search_path in the libpq options).
class test_schema {
 public:
  /// none: an empty schema, for tests of the migrations themselves.
  enum class migrations { apply, none };

  explicit test_schema(migrations m = migrations::apply);
  /// On the server of `base_url` instead of DATABASE_URL's (a test's own PostgreSQL instance).
  explicit test_schema(std::string base_url, migrations m = migrations::apply);
  ~test_schema();
  test_schema(const test_schema&) = delete;
  test_schema& operator=(const test_schema&) = delete;

  const std::string& name() const noexcept { return name_; }
  /// DATABASE_URL with `options=-csearch_path=<name>`.
  const std::string& url() const noexcept { return url_; }
  pqxx::connection connect() const;
  common::database_config database_config(std::string application_name = "test") const;

 private:
  std::string base_url_;
  std::string name_;
  std::string url_;
};

/// A child process started with fork/exec, stdout+stderr to `log_path`. Killed (SIGKILL) and
/// reaped at destruction if still running.
class child_process {
 public:
  child_process(std::string binary, std::vector<std::string> args, std::map<std::string, std::string> extra_env,
                std::string log_path);
  ~child_process();
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  int pid() const noexcept { return pid_; }
  void signal(int signo) const;
  /// Waits for the exit; returns the exit code (128+signal when killed) or nullopt on timeout.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  bool running();
  /// The log so far.
  std::string log() const;
  /// True once the log contains `text`.
  bool log_contains(std::string_view text) const { return log().find(text) != std::string::npos; }

 private:
  int pid_ = -1;
  std::optional<int> status_;
  std::string log_path_;
};

/// Runs `$OUTBOX_SERVICES_SCRIPT <action> <service>` (e.g. "down", "kafka") and checks it succeeded.
void services(std::string_view action, std::string_view service);

struct consumed_message {
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  std::optional<std::string> key;
  std::string payload;
  /// The record's timestamp in ms since the epoch (CreateTime, or the broker's append time on a
  /// topic created with message.timestamp.type=LogAppendTime); -1 when the record has none.
  std::int64_t timestamp_ms = -1;
  std::map<std::string, std::string> headers;
};

/// Reads `topic` from the beginning of every partition (no consumer group) until `count`
/// messages arrived or `timeout` passed. Messages come grouped by partition, each in offset order.
std::vector<consumed_message> read_topic(const std::string& topic, std::size_t count,
                                         std::chrono::milliseconds timeout);

/// Creates `topic` with `partitions` partitions and the broker's default replication factor on the
/// test broker (idempotent); `topic_config` holds
/// topic-level settings such as {"message.timestamp.type", "LogAppendTime"}.
void create_topic(const std::string& topic, int partitions,
                  const std::map<std::string, std::string>& topic_config = {});

/// A producer for tests that inject messages themselves (acks=all, idempotent). send() queues;
/// flush() waits until every queued message was persisted by the broker. Not thread-safe.
class kafka_producer {
 public:
  struct message {
    std::string topic;
    std::optional<std::string> key;
    std::string payload;
    std::vector<std::pair<std::string, std::string>> headers;
    std::int32_t partition = -1;  // -1: librdkafka's partitioner (by key)
  };

  kafka_producer();
  ~kafka_producer();
  kafka_producer(const kafka_producer&) = delete;
  kafka_producer& operator=(const kafka_producer&) = delete;

  /// Queues `m`; throws if librdkafka refuses it (unknown partition, queue full).
  void send(const message& m);
  /// Blocks at most `timeout`; throws unless every message sent so far has been persisted.
  void flush(std::chrono::milliseconds timeout = 30s);

 private:
  struct state;
  std::unique_ptr<state> state_;
};

/// High watermark (next offset to be written) of every partition of `topic`.
std::map<std::int32_t, std::int64_t> end_offsets(const std::string& topic, std::chrono::milliseconds timeout = 10s);

/// Offsets `group` has committed for the partitions of `topic` (partitions without a commit are
/// left out). Asks the group coordinator without joining the group.
std::map<std::int32_t, std::int64_t> committed_offsets(const std::string& group, const std::string& topic,
                                                       std::chrono::milliseconds timeout = 10s);

/// Commits `offsets` (partition -> next offset to read) of `topic` for `group`, as its members
/// would, without joining it: a group that starts later begins there. The group must have no members.
void commit_offsets(const std::string& group, const std::string& topic,
                    const std::map<std::int32_t, std::int64_t>& offsets);

/// A consumer group as the coordinator describes it (Admin API DescribeConsumerGroups).
struct group_member {
  std::string member_id;
  std::string client_id;
  std::vector<std::pair<std::string, std::int32_t>> assignment;  // (topic, partition)
};
struct group_description {
  std::string state;  // "Stable", "PreparingRebalance", "CompletingRebalance", "Empty", "Dead", "Unknown"
  std::vector<group_member> members;
};
group_description describe_group(const std::string& group, std::chrono::milliseconds timeout = 10s);

/// PostgreSQL backend pids serving the TCP connections that process `os_pid` has open to the
/// database port of DATABASE_URL right now (its sockets from /proc/<pid>/fd and /proc/<pid>/net,
/// matched by client port in pg_stat_activity).
std::vector<int> database_backends(int os_pid, pqxx::connection& db);

/// The value of `sample` in a Prometheus text exposition: a metric name, with its labels exactly as
/// rendered when it has any (e.g. `x_total` or `x_total{reason="rejected"}`). nullopt when absent.
std::optional<double> metric_value(std::string_view exposition, std::string_view sample);

/// Deletes its Redis keys (streams a test made, under unique names) when the scope ends; best
/// effort: a key left behind harms no other test. The connection must outlive it.
class redis_keys {
 public:
  redis_keys(common::redis::connection& redis, std::vector<std::string> keys) : redis_(redis), keys_(std::move(keys)) {}
  ~redis_keys();
  redis_keys(const redis_keys&) = delete;
  redis_keys& operator=(const redis_keys&) = delete;

 private:
  common::redis::connection& redis_;
  std::vector<std::string> keys_;
};

}  // namespace test_support
