// broadcaster_harness.hpp: withdrawal rows in the database, and the checks of their payments
// against the node.
#include "broadcaster_harness.hpp"

#include <algorithm>
#include <sstream>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <pqxx/pqxx>

#include "chain/hex.hpp"
#include "common/text.hpp"

namespace broadcaster_itest {

namespace {

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
    CHECK(common::ascii_lower(*w.from_address) == from.to_lower_hex());
    const auto recipient = chain::address::parse(w.to_address);
    REQUIRE(recipient.has_value());
    const chain::uint256 wei = to_wei(w.amount);

    const auto tx = transaction_by_hash(node, *w.tx_hash);
    INFO("eth_getTransactionByHash(" << *w.tx_hash << ") = " << tx.dump());
    REQUIRE(tx.is_object());
    CHECK(common::ascii_lower(tx.at("from").get<std::string>()) == from.to_lower_hex());
    CHECK(common::ascii_lower(tx.at("to").get<std::string>()) == recipient->to_lower_hex());
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
