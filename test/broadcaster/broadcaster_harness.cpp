#include "broadcaster_harness.hpp"

#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <filesystem>
#include <random>
#include <regex>
#include <sstream>
#include <stdexcept>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <pqxx/pqxx>

#include "chain/hex.hpp"
#include "chain/transaction.hpp"
#include "chain/units.hpp"
#include "http_client.hpp"

namespace broadcaster_itest {

namespace {

// anvil's deterministic account #2 (mnemonic "test test ... junk"): the funder of the tests' hot
// wallets. #0 and #1 belong to other suites.
constexpr std::string_view funder_key = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a";

std::mt19937_64& random_engine() {
  static std::mt19937_64 engine{std::random_device{}()};
  return engine;
}

template <std::size_t N>
std::array<std::uint8_t, N> random_bytes() {
  std::array<std::uint8_t, N> out{};
  std::uniform_int_distribution<unsigned> byte(0, 255);
  for (auto& b : out) b = static_cast<std::uint8_t>(byte(random_engine()));
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string uuid_v4() {
  auto b = random_bytes<16>();
  b[6] = static_cast<std::uint8_t>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<std::uint8_t>((b[8] & 0x3f) | 0x80);
  const std::string h = chain::to_hex(b, false);
  return fmt::format("{}-{}-{}-{}-{}", h.substr(0, 8), h.substr(8, 4), h.substr(12, 4), h.substr(16, 4), h.substr(20));
}

std::string rfc3339_now() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  std::array<char, 32> text{};
  std::strftime(text.data(), text.size(), "%Y-%m-%dT%H:%M:%S", &utc);
  return fmt::format("{}.{:03}Z", text.data(), millis);
}

std::string id_array(const std::vector<std::int64_t>& ids) {
  std::string out = "{";
  for (std::size_t i = 0; i < ids.size(); ++i) out += (i == 0 ? "" : ",") + std::to_string(ids[i]);
  return out + "}";
}

chain::hash256 hash_from_hex(const std::string& text) {
  chain::hash256 out{};
  chain::from_hex(text, out);
  return out;
}

withdrawal_row to_row(const pqxx::row& r) {
  withdrawal_row w;
  w.id = r[0].as<std::int64_t>();
  w.user_id = r[1].as<std::int64_t>();
  w.chain = r[2].as<std::string>();
  w.to_address = r[3].as<std::string>();
  w.amount = r[4].as<std::string>();
  w.status = r[5].as<std::string>();
  if (!r[6].is_null()) w.from_address = r[6].as<std::string>();
  if (!r[7].is_null()) w.nonce = r[7].as<std::int64_t>();
  if (!r[8].is_null()) w.tx_hash = r[8].as<std::string>();
  if (!r[9].is_null()) w.failure_reason = r[9].as<std::string>();
  w.confirmed_at_set = r[10].as<bool>();
  w.failed_at_set = r[11].as<bool>();
  return w;
}

constexpr std::string_view withdrawal_columns =
    "id, user_id, chain, to_address, amount::text, status, from_address, nonce, tx_hash, failure_reason, "
    "confirmed_at IS NOT NULL, failed_at IS NOT NULL";

}  // namespace

// ------------------------------------------------------------------ the chain

std::unique_ptr<broadcaster::eth_rpc> connect_node() {
  return std::make_unique<broadcaster::eth_rpc>(test_support::require_env("ETH_RPC_URL"), 10s);
}

chain::uint256 to_wei(std::string_view eth) {
  const auto parsed = chain::parse_units(eth, chain::eth_decimals);
  if (!parsed) throw std::invalid_argument(fmt::format("test amount \"{}\": {}", eth, parsed.message));
  return parsed.value;
}

chain::address random_address() { return chain::address(random_bytes<chain::address::size>()); }

hot_wallet funded_hot_wallet(broadcaster::eth_rpc& node, const chain::uint256& funding) {
  for (;;) {
    std::string key_hex = chain::to_hex(random_bytes<32>(), false);
    try {
      chain::private_key key(key_hex);
      hot_wallet wallet{key_hex, key.address()};
      transfer(node, chain::private_key(funder_key), wallet.address, funding);
      return wallet;
    } catch (const std::invalid_argument&) {
      // Not a valid secp256k1 secret (probability ~2^-128): draw again.
    }
  }
}

chain::hash256 transfer(broadcaster::eth_rpc& node, const chain::private_key& from, const chain::address& to,
                        const chain::uint256& value) {
  const std::uint64_t chain_id = node.chain_id();
  for (int attempt = 1;; ++attempt) {
    chain::legacy_transaction tx;
    tx.nonce = node.get_transaction_count(from.address(), "pending");
    // A fixed 1 gwei tip over twice the base fee. Not a multiple of eth_gasPrice: anvil suggests
    // the latest block's lowest tip, so paying double the suggestion would double it for everyone
    // on the node with every funding transfer.
    tx.gas_price = node.base_fee_per_gas().value_or(0) * 2 + chain::uint256(1'000'000'000);
    tx.gas_limit = 21000;
    tx.to = to;
    tx.value = value;
    tx.chain_id = chain_id;
    const auto signed_tx = chain::sign(tx, from);
    const auto result = node.send_raw_transaction(signed_tx.raw, signed_tx.hash);
    if (result.outcome == broadcaster::send_outcome::sent ||
        result.outcome == broadcaster::send_outcome::already_known) {
      std::optional<broadcaster::transaction_receipt> receipt;
      const bool mined = test_support::wait_until(
          [&] { return (receipt = node.get_transaction_receipt(signed_tx.hash)).has_value(); }, 30s, 50ms);
      if (!mined || !receipt->success) {
        throw std::runtime_error(fmt::format("transfer {} from {} to {}: {}", chain::to_hex(signed_tx.hash),
                                             from.address().to_checksum_string(), to.to_checksum_string(),
                                             mined ? "reverted" : "not mined within 30 s"));
      }
      return signed_tx.hash;
    }
    // Another client of the same sender may have taken the nonce between our read and our send.
    if (!result.nonce_too_low || attempt == 5) {
      throw std::runtime_error(
          fmt::format("transfer from {}: the node refused: {}", from.address().to_checksum_string(), result.message));
    }
  }
}

nlohmann::json transaction_by_hash(broadcaster::eth_rpc& node, const std::string& hash_hex) {
  return node.call("eth_getTransactionByHash", nlohmann::json::array({hash_hex}));
}

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

// ------------------------------------------------------------------ the database

void make_withdrawal_ids_unique(pqxx::connection& db) {
  const auto now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch());
  std::uniform_int_distribution<std::int64_t> spread(0, 999);
  // ~1.7e15: unique per millisecond of the test's start, and still below 2^53 (exact as a JSON number).
  const std::int64_t first = now_ms.count() * 1000 + spread(random_engine());
  pqxx::work tx(db);
  tx.exec0(fmt::format("ALTER TABLE withdrawals ALTER COLUMN id RESTART WITH {}", first));
  tx.commit();
}

void create_account(pqxx::connection& db, std::int64_t user_id, std::string_view balance) {
  pqxx::work tx(db);
  tx.exec_params0("INSERT INTO accounts (user_id, balance) VALUES ($1, $2::numeric)", user_id, std::string(balance));
  tx.commit();
}

std::int64_t insert_pending_withdrawal(pqxx::work& tx, const new_withdrawal& w) {
  tx.exec_params1(
      "UPDATE accounts SET balance = balance - $2::numeric, updated_at = now() WHERE user_id = $1 "
      "RETURNING balance",
      w.user_id, w.amount);
  return tx
      .exec_params1(
          "INSERT INTO withdrawals (user_id, chain, to_address, amount) VALUES ($1, $2, $3, $4::numeric) "
          "RETURNING id",
          w.user_id, w.chain, w.to.to_checksum_string(), w.amount)[0]
      .as<std::int64_t>();
}

std::int64_t insert_pending_withdrawal(pqxx::connection& db, const new_withdrawal& w) {
  pqxx::work tx(db);
  const auto id = insert_pending_withdrawal(tx, w);
  tx.commit();
  return id;
}

withdrawal_row load_withdrawal(pqxx::connection& db, std::int64_t id) {
  auto rows = load_withdrawals(db, {id});
  if (rows.size() != 1) throw std::runtime_error(fmt::format("withdrawal {} not found", id));
  return rows.front();
}

std::vector<withdrawal_row> load_withdrawals(pqxx::connection& db, const std::vector<std::int64_t>& ids) {
  pqxx::read_transaction tx(db);
  std::vector<withdrawal_row> out;
  for (const auto& r : tx.exec_params(
           fmt::format("SELECT {} FROM withdrawals WHERE id = ANY($1::bigint[]) ORDER BY id", withdrawal_columns),
           id_array(ids))) {
    out.push_back(to_row(r));
  }
  return out;
}

std::size_t count_status(pqxx::connection& db, const std::vector<std::int64_t>& ids, std::string_view status) {
  pqxx::read_transaction tx(db);
  return tx
      .exec_params1("SELECT count(*) FROM withdrawals WHERE id = ANY($1::bigint[]) AND status = $2", id_array(ids),
                    std::string(status))[0]
      .as<std::size_t>();
}

bool wait_all_status(pqxx::connection& db, const std::vector<std::int64_t>& ids, std::string_view status,
                     std::chrono::milliseconds timeout) {
  return test_support::wait_until([&] { return count_status(db, ids, status) == ids.size(); }, timeout, 100ms);
}

bool balance_is(pqxx::connection& db, std::int64_t user_id, std::string_view expected) {
  pqxx::read_transaction tx(db);
  return tx
      .exec_params1("SELECT balance = $2::numeric FROM accounts WHERE user_id = $1", user_id, std::string(expected))[0]
      .as<bool>();
}

std::string balance_text(pqxx::connection& db, std::int64_t user_id) {
  pqxx::read_transaction tx(db);
  return tx.exec_params1("SELECT balance::text FROM accounts WHERE user_id = $1", user_id)[0].as<std::string>();
}

// ------------------------------------------------------------------ events

std::string event_payload(std::int64_t withdrawal_id, std::int64_t user_id, std::string_view to_address,
                          std::string_view amount, std::string_view chain) {
  return nlohmann::json{{"withdrawal_id", withdrawal_id},
                        {"user_id", user_id},
                        {"to_address", to_address},
                        {"amount", amount},
                        {"chain", chain}}
      .dump();
}

test_support::kafka_producer::message event_message(const std::string& topic, std::int64_t user_id, std::string payload,
                                                    std::int64_t outbox_id, std::int32_t partition) {
  test_support::kafka_producer::message m;
  m.topic = topic;
  m.key = std::to_string(user_id);
  m.payload = std::move(payload);
  m.headers = {{"event-type", "WithdrawalCreated"},
               {"event-id", uuid_v4()},
               {"created-at", rfc3339_now()},
               {"outbox-id", std::to_string(outbox_id)}};
  m.partition = partition;
  return m;
}

test_support::kafka_producer::message event_for(const std::string& topic, const withdrawal_row& w,
                                                std::int32_t partition) {
  // The outbox id only has to be unique per event here; the withdrawal id is.
  return event_message(topic, w.user_id, event_payload(w.id, w.user_id, w.to_address, w.amount, w.chain), w.id,
                       partition);
}

void insert_outbox_event(pqxx::work& tx, const std::string& topic, std::int64_t user_id, const std::string& payload) {
  const nlohmann::json headers{
      {"event-type", "WithdrawalCreated"}, {"event-id", uuid_v4()}, {"created-at", rfc3339_now()}};
  tx.exec_params0(
      "INSERT INTO outbox_messages (topic, key, payload, headers) "
      "VALUES ($1, $2, convert_to($3, 'UTF8'), $4::jsonb)",
      topic, std::to_string(user_id), payload, headers.dump());
}

// ------------------------------------------------------------------ payments

void check_paid_exactly_once(broadcaster::eth_rpc& node, const std::vector<withdrawal_row>& rows,
                             const chain::address& from) {
  for (const auto& w : rows) {
    INFO("withdrawal " << w.id << " status " << w.status << " to " << w.to_address << " amount " << w.amount);
    CHECK(w.status == "confirmed");
    CHECK(w.confirmed_at_set);
    REQUIRE(w.tx_hash.has_value());
    REQUIRE(w.nonce.has_value());
    REQUIRE(w.from_address.has_value());
    CHECK(lower(*w.from_address) == from.to_lower_hex());
    const auto recipient = chain::address::parse(w.to_address);
    REQUIRE(recipient.has_value());
    const chain::uint256 wei = to_wei(w.amount);

    const auto tx = transaction_by_hash(node, *w.tx_hash);
    INFO("eth_getTransactionByHash(" << *w.tx_hash << ") = " << tx.dump());
    REQUIRE(tx.is_object());
    CHECK(lower(tx.at("from").get<std::string>()) == from.to_lower_hex());
    CHECK(lower(tx.at("to").get<std::string>()) == recipient->to_lower_hex());
    CHECK(broadcaster::parse_quantity(tx.at("value").get<std::string>()) == wei);
    CHECK(broadcaster::parse_quantity_u64(tx.at("nonce").get<std::string>()) == static_cast<std::uint64_t>(*w.nonce));

    const auto receipt = node.get_transaction_receipt(hash_from_hex(*w.tx_hash));
    REQUIRE(receipt.has_value());
    CHECK(receipt->success);
    // A fresh recipient: exactly one payment of exactly the amount.
    CHECK(node.get_balance(*recipient) == wei);
  }
}

void check_contiguous_nonces(const std::vector<withdrawal_row>& rows, std::uint64_t first) {
  std::vector<std::uint64_t> nonces;
  for (const auto& w : rows) {
    if (w.nonce) nonces.push_back(static_cast<std::uint64_t>(*w.nonce));
  }
  std::sort(nonces.begin(), nonces.end());
  std::vector<std::uint64_t> expected(rows.size());
  for (std::size_t i = 0; i < expected.size(); ++i) expected[i] = first + i;
  CHECK(nonces == expected);
}

std::string describe(const std::vector<withdrawal_row>& rows) {
  std::ostringstream out;
  for (const auto& w : rows) {
    out << "  " << w.id << " user " << w.user_id << " " << w.status << " nonce "
        << (w.nonce ? std::to_string(*w.nonce) : "-") << " tx " << w.tx_hash.value_or("-") << " reason "
        << w.failure_reason.value_or("-") << "\n";
  }
  return out.str();
}

}  // namespace broadcaster_itest
