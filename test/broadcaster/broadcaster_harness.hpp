#pragma once
// Shared pieces of the broadcaster-worker integration suites (*_itest.cpp in this folder): real
// daemons as child processes on a test schema, withdrawals written with SQL, WithdrawalCreated
// events produced to Kafka, and checks against what the anvil node actually holds.
// Not thread-safe; every call that waits takes a deadline.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>
#include <pqxx/connection>
#include <pqxx/transaction>

#include "broadcaster/eth_rpc.hpp"
#include "chain/address.hpp"
#include "chain/signer.hpp"
#include "chain/uint256.hpp"
#include "test_support.hpp"

namespace broadcaster_itest {

using namespace std::chrono_literals;

/// The suites' random source, seeded once per process from std::random_device.
std::mt19937_64& random_engine();

// ------------------------------------------------------------------ the chain

/// A JSON-RPC client for ETH_RPC_URL (10 s per call).
std::unique_ptr<broadcaster::eth_rpc> connect_node();

/// Exact wei of a decimal ETH amount ("0.001" -> 10^15); fails the test on a bad literal.
chain::uint256 to_wei(std::string_view eth);

/// A random address nobody holds a key for: its balance starts at 0, so after the test it shows
/// exactly what was paid to it (a second payment would double it).
chain::address random_address();

/// A hot wallet of its own for one test: a fresh random key (nonce 0, no other user), funded from
/// anvil's deterministic account #2 with `funding` wei (mined before this returns).
struct hot_wallet {
  std::string key_hex;  // 64 hex digits, for BROADCASTER_SIGNING_KEY
  chain::address address;
};
hot_wallet funded_hot_wallet(broadcaster::eth_rpc& node, const chain::uint256& funding);

/// Sends `value` wei from `from` to `to` (legacy transaction, gas price 2 x base fee + 1 gwei, nonce =
/// the sender's pending count) and waits up to 30 s for a successful receipt. Returns the hash.
chain::hash256 transfer(broadcaster::eth_rpc& node, const chain::private_key& from, const chain::address& to,
                        const chain::uint256& value);

/// eth_getTransactionByHash(hash); null when the node does not know it.
nlohmann::json transaction_by_hash(broadcaster::eth_rpc& node, const std::string& hash_hex);

// ------------------------------------------------------------------ processes

/// <repo>/conf/<name>.toml.
std::string config_path(std::string_view name);

/// A daemon (`<build>/bin/<binary> --config <repo>/conf/<config>.toml`) with `env` on top of the
/// test's environment. SIGKILLed at destruction if still running.
class daemon_process {
 public:
  daemon_process(std::string binary, std::string config, std::map<std::string, std::string> env, std::string label);

  test_support::child_process& process() { return *process_; }
  int pid() const noexcept { return process_->pid(); }
  bool running() { return process_->running(); }
  std::string log() const { return process_->log(); }
  const std::string& log_path() const noexcept { return log_path_; }
  void signal(int signo) const { process_->signal(signo); }
  std::optional<int> wait(std::chrono::milliseconds timeout) { return process_->wait(timeout); }
  /// SIGKILL and reap.
  void kill();

  /// The HTTP port from the "listening on http://…:<port>" log line (waits up to `timeout`).
  std::uint16_t http_port(std::chrono::milliseconds timeout = 30s);
  /// GET /metrics on http_port(); fails the test unless it answers 200.
  std::string metrics();
  /// A sample of metrics() (see test_support::metric_value); fails the test when it is absent.
  double metric(std::string_view sample);
  /// broadcaster_rpc_calls_total{method="<method>"}: 0 before the first call of that method.
  double rpc_calls(std::string_view method);

 private:
  std::string log_path_;
  std::unique_ptr<test_support::child_process> process_;
  std::optional<std::uint16_t> port_;
};

/// What a broadcaster-worker needs: the schema, its hot wallet, and where its events come from.
struct worker_setup {
  const test_support::test_schema* schema = nullptr;
  const hot_wallet* wallet = nullptr;
  std::string topic;  // Kafka topic or Redis stream
  std::string group;
  std::string dlq_topic;  // Kafka topic or Redis stream
  std::string mq = "kafka";
  std::map<std::string, std::string> extra_env;
};

/// The worker's environment: DATABASE_URL of the schema, BROADCASTER_CONSUMER_TOPIC/_GROUP/_DLQ_TOPIC,
/// BROADCASTER_SIGNING_KEY, REDIS_MQ_TYPE, ephemeral HTTP port, confirmation polled every 100 ms,
/// retries capped at 1 s; extra_env on top.
std::map<std::string, std::string> worker_environment(const worker_setup& setup);

/// Starts broadcaster-worker and waits until it logged its MQ mode and its HTTP port.
std::unique_ptr<daemon_process> start_worker(const worker_setup& setup, std::string label = "worker");

/// True once `group` is Stable with exactly `members` members whose assignments together cover
/// `partitions` partitions of `topic`, each member holding at least one.
bool wait_group_assigned(const std::string& group, const std::string& topic, std::size_t members, int partitions,
                         std::chrono::milliseconds timeout = 60s);

/// What runs after wallet-service, wired as in production, on `schema`: withdrawal ids made
/// unique (make_withdrawal_ids_unique), wallet-service's topic (created with 6 partitions; other
/// tests publish to it too), a broadcaster-worker with a group, DLQ and hot wallet (funded with
/// `funding` wei) of its own that holds every partition, then an outbox-relay publishing to
/// Kafka. `label` names the group, the DLQ and the logs. Fails the test when a step does.
struct relay_to_chain {
  relay_to_chain(const test_support::test_schema& schema, std::string_view label, const chain::uint256& funding);

  std::string topic = "wallet_events_withdrawal";
  std::string group;
  std::string dlq;
  std::unique_ptr<broadcaster::eth_rpc> node;
  hot_wallet wallet;
  std::unique_ptr<daemon_process> worker;
  std::unique_ptr<daemon_process> relay;
};

/// Withdrawal ids named by the worker's `收到提现事件 id=<n>` log lines, with how often each occurs.
std::map<std::int64_t, int> received_ids(const std::string& log);

// ------------------------------------------------------------------ the database

/// Withdrawal ids of this schema start at a value derived from the clock instead of 1, so that
/// events other schemas wrote to a shared topic can never name one of them.
void make_withdrawal_ids_unique(pqxx::connection& db);

void create_account(pqxx::connection& db, std::int64_t user_id, std::string_view balance);

struct new_withdrawal {
  std::int64_t user_id = 0;
  chain::address to;
  std::string amount;  // decimal ETH
  std::string chain = "eth";
};

/// What wallet-service does for a withdrawal, without the outbox row: debit the account and insert
/// the withdrawal as pending, in `tx`. Returns its id.
std::int64_t insert_pending_withdrawal(pqxx::work& tx, const new_withdrawal& w);
/// The same in a transaction of its own.
std::int64_t insert_pending_withdrawal(pqxx::connection& db, const new_withdrawal& w);

struct withdrawal_row {
  std::int64_t id = 0;
  std::int64_t user_id = 0;
  std::string chain;
  std::string to_address;
  std::string amount;  // numeric text as stored
  std::string status;
  std::optional<std::string> from_address;
  std::optional<std::int64_t> nonce;
  std::optional<std::string> tx_hash;
  std::optional<std::string> failure_reason;
  bool confirmed_at_set = false;
  bool failed_at_set = false;
};
withdrawal_row load_withdrawal(pqxx::connection& db, std::int64_t id);
std::vector<withdrawal_row> load_withdrawals(pqxx::connection& db, const std::vector<std::int64_t>& ids);

/// How many of `ids` have `status`.
std::size_t count_status(pqxx::connection& db, const std::vector<std::int64_t>& ids, std::string_view status);
/// True once every one of `ids` has `status`.
bool wait_all_status(pqxx::connection& db, const std::vector<std::int64_t>& ids, std::string_view status,
                     std::chrono::milliseconds timeout);

/// accounts.balance = `expected` compared as numeric (exact).
bool balance_is(pqxx::connection& db, std::int64_t user_id, std::string_view expected);
std::string balance_text(pqxx::connection& db, std::int64_t user_id);

// ------------------------------------------------------------------ events

/// The WithdrawalCreated JSON exactly as wallet-service writes it.
std::string event_payload(std::int64_t withdrawal_id, std::int64_t user_id, std::string_view to_address,
                          std::string_view amount, std::string_view chain = "eth");

/// The Kafka record of an event: key = user id, headers event-type, event-id (random UUID),
/// created-at (now), outbox-id = `outbox_id`.
test_support::kafka_producer::message event_message(const std::string& topic, std::int64_t user_id, std::string payload,
                                                    std::int64_t outbox_id, std::int32_t partition = -1);

/// The Kafka record of the pending withdrawal `w` (loaded from the schema) as wallet-service would publish it.
test_support::kafka_producer::message event_for(const std::string& topic, const withdrawal_row& w,
                                                std::int32_t partition = -1);

/// Inserts the outbox row wallet-service writes with a withdrawal (topic, key = user id, payload,
/// headers event-type/event-id/created-at), in `tx`.
void insert_outbox_event(pqxx::work& tx, const std::string& topic, std::int64_t user_id, const std::string& payload);

// ------------------------------------------------------------------ payments

/// Every row is confirmed and paid exactly once on the node: a mined transaction with status 0x1,
/// from `from`, to the row's recipient, value = the row's amount in wei, nonce = the row's nonce,
/// and the recipient's balance equals the amount (recipients are fresh, so a second payment
/// would show). Reports each failure with CHECK.
void check_paid_exactly_once(broadcaster::eth_rpc& node, const std::vector<withdrawal_row>& rows,
                             const chain::address& from);

/// The rows' nonces are exactly first, first+1, ..., first+rows.size()-1.
void check_contiguous_nonces(const std::vector<withdrawal_row>& rows, std::uint64_t first);

/// One human-readable line per row, for INFO() when a wait times out.
std::string describe(const std::vector<withdrawal_row>& rows);

}  // namespace broadcaster_itest
