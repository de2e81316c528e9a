// Migration 000002 (withdrawal_transactions, cancel requests): applied over data written by 000001,
// reverted and applied again.

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <pqxx/pqxx>

#include "common/migrate.hpp"
#include "test_support.hpp"

namespace {

constexpr const char* hash_a = "0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
constexpr const char* hash_b = "0xbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

}  // namespace

TEST_CASE("migration 000002: versions of existing withdrawals are copied, and only live hashes must be unique",
          "[migrate][broadcaster]") {
  test_support::test_schema schema(test_support::test_schema::migrations::none);
  pqxx::connection db(schema.url());
  common::migrator migrator(db, common::default_migrations_dir());
  REQUIRE(migrator.up(1) == std::vector<std::int64_t>{1});
  {
    pqxx::work tx(db);
    tx.exec0("INSERT INTO accounts (user_id, balance) VALUES (1, 10)");
    // A signed (maybe sent) withdrawal, a failed one, and a pending one.
    tx.exec0(fmt::format(
        "INSERT INTO withdrawals (user_id, chain, to_address, amount, status, from_address, nonce, tx_hash, raw_tx, "
        "signed_at) VALUES (1, 'eth', '0x01', 1, 'signed', '0xF', 7, '{}', '\\x01', now())",
        hash_a));
    tx.exec0(fmt::format(
        "INSERT INTO withdrawals (user_id, chain, to_address, amount, status, from_address, nonce, tx_hash, raw_tx, "
        "signed_at, failed_at) VALUES (1, 'eth', '0x01', 1, 'failed', '0xF', 8, '{}', '\\x02', now(), now())",
        hash_b));
    tx.exec0("INSERT INTO withdrawals (user_id, chain, to_address, amount) VALUES (1, 'eth', '0x01', 1)");
    tx.commit();
  }
  REQUIRE(migrator.up(1) == std::vector<std::int64_t>{2});

  pqxx::work tx(db);
  const auto versions = tx.exec(
      "SELECT w.status, t.kind, t.nonce, t.sent_at IS NOT NULL, t.discarded_at IS NOT NULL FROM "
      "withdrawal_transactions t"
      " JOIN withdrawals w ON w.id = t.withdrawal_id ORDER BY t.nonce");
  REQUIRE(versions.size() == 2);
  // Whether the signed one was sent is unknown: it counts as sent, so its nonce is never released.
  CHECK(versions[0][0].as<std::string>() == "signed");
  CHECK(versions[0][1].as<std::string>() == "payment");
  CHECK(versions[0][2].as<int>() == 7);
  CHECK(versions[0][3].as<bool>());
  CHECK_FALSE(versions[0][4].as<bool>());
  CHECK(versions[1][0].as<std::string>() == "failed");
  CHECK(versions[1][4].as<bool>());

  // The failed withdrawal's hash may come back on a live one (an identical payout retried) ...
  tx.exec0(fmt::format(
      "INSERT INTO withdrawals (user_id, chain, to_address, amount, status, from_address, nonce, tx_hash, raw_tx) "
      "VALUES (1, 'eth', '0x01', 1, 'signed', '0xF', 8, '{}', '\\x02')",
      hash_b));
  tx.exec0(
      fmt::format("INSERT INTO withdrawal_transactions (withdrawal_id, kind, nonce, tx_hash, raw_tx) "
                  "SELECT max(id), 'payment', 8, '{}', '\\x02' FROM withdrawals",
                  hash_b));
  tx.commit();
  // ... but two live ones never share one.
  CHECK_THROWS_AS(pqxx::work(db).exec0(fmt::format("INSERT INTO withdrawal_transactions (withdrawal_id, kind, nonce, "
                                                   "tx_hash, raw_tx) SELECT min(id), 'payment', 7, '{}', '\\x01' "
                                                   "FROM withdrawals",
                                                   hash_a)),
                  pqxx::unique_violation);
  // A cancel request names who asked.
  CHECK_THROWS_AS(pqxx::work(db).exec0("UPDATE withdrawals SET cancel_requested_at = now()"), pqxx::check_violation);

  // Reverting cannot hold a failed and a live withdrawal with one hash: it fails and changes nothing.
  CHECK_THROWS(migrator.down(1));
  CHECK(migrator.state().version == 2);
  CHECK_FALSE(migrator.state().dirty);
  {
    pqxx::work cleanup(db);
    cleanup.exec0("DELETE FROM withdrawal_transactions WHERE withdrawal_id = (SELECT max(id) FROM withdrawals)");
    cleanup.exec0("DELETE FROM withdrawals WHERE id = (SELECT max(id) FROM withdrawals)");
    cleanup.commit();
  }
  CHECK(migrator.down(1) == std::vector<std::int64_t>{2});
  CHECK(migrator.up(1) == std::vector<std::int64_t>{2});
}
