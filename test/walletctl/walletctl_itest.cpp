// walletctl's read-only views against the real PostgreSQL: `withdrawals list` (status and time in
// it), `withdrawals show` (status history from migration 000005's trigger, transaction versions and
// their blocks), and the --json form of every listing (withdrawals list/show, dead-letters list,
// outbox status). Rows are written with SQL the way the daemons write them.

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "test_support.hpp"

using namespace std::chrono_literals;
using nlohmann::json;

namespace {

struct run_result {
  int code = -1;
  std::string output;  // stdout and stderr
};

run_result walletctl(const test_support::test_schema& schema, std::vector<std::string> args) {
  test_support::child_process p(test_support::bin_path("walletctl"), std::move(args), {{"DATABASE_URL", schema.url()}},
                                test_support::new_log_path("walletctl"));
  const auto code = p.wait(30s);
  return {code.value_or(-1), p.log()};
}

json walletctl_json(const test_support::test_schema& schema, std::vector<std::string> args) {
  const auto r = walletctl(schema, std::move(args));
  INFO("walletctl output: " << r.output);
  REQUIRE(r.code == 0);
  return json::parse(r.output);
}

std::int64_t insert_withdrawal(pqxx::work& tx, std::int64_t user_id, std::string_view amount) {
  return tx
      .exec_params1(
          "INSERT INTO withdrawals (user_id, chain, to_address, amount) "
          "VALUES ($1, 'eth', '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed', $2::numeric) RETURNING id",
          user_id, std::string(amount))[0]
      .as<std::int64_t>();
}

// What the broadcaster writes when it signs: the row's transaction fields and the first version.
void sign(pqxx::work& tx, std::int64_t id, std::int64_t nonce, std::string_view hash) {
  tx.exec_params0(
      "UPDATE withdrawals SET status = 'signed', from_address = '0x0000000000000000000000000000000000000001', "
      "nonce = $2, tx_hash = $3, raw_tx = '\\x02'::bytea, signed_at = now(), updated_at = now() "
      "WHERE id = $1",
      id, nonce, std::string(hash));
  tx.exec_params0(
      "INSERT INTO withdrawal_transactions (withdrawal_id, kind, nonce, tx_hash, raw_tx, max_fee_per_gas, "
      "max_priority_fee_per_gas) VALUES ($1, 'payment', $2, $3, '\\x02'::bytea, 30000000000, 1000000000)",
      id, nonce, std::string(hash));
}

std::vector<std::int64_t> ids_of(const json& list) {
  std::vector<std::int64_t> ids;
  for (const auto& w : list) ids.push_back(w.at("id").get<std::int64_t>());
  return ids;
}

}  // namespace

TEST_CASE("walletctl withdrawals list: by status and by time in that status, text and --json", "[walletctl]") {
  test_support::test_schema schema;
  auto db = schema.connect();
  std::int64_t pending = 0, stuck = 0, fresh_signed = 0;
  {
    pqxx::work tx(db);
    tx.exec0("INSERT INTO accounts (user_id, balance) VALUES (1, 10)");
    pending = insert_withdrawal(tx, 1, "0.25");
    stuck = insert_withdrawal(tx, 1, "1.000000000000000001");
    fresh_signed = insert_withdrawal(tx, 1, "2");
    tx.commit();
  }
  {
    pqxx::work tx(db);
    sign(tx, stuck, 1, "0x" + std::string(64, 'a'));
    sign(tx, fresh_signed, 2, "0x" + std::string(64, 'b'));
    tx.commit();
  }
  // `stuck` entered `signed` ten minutes ago (the trigger's row, moved back in time).
  {
    pqxx::work tx(db);
    tx.exec_params0(
        "UPDATE withdrawal_status_history SET changed_at = now() - interval '10 minutes' "
        "WHERE withdrawal_id = $1",
        stuck);
    tx.commit();
  }

  const auto all = walletctl_json(schema, {"withdrawals", "list", "--json"});
  CHECK(ids_of(all) == std::vector<std::int64_t>{stuck, pending, fresh_signed});  // longest in its status first
  const auto signed_old =
      walletctl_json(schema, {"withdrawals", "list", "--status", "signed", "--older-than", "5m", "--json"});
  REQUIRE(ids_of(signed_old) == std::vector<std::int64_t>{stuck});
  CHECK(signed_old[0].at("status") == "signed");
  CHECK(signed_old[0].at("amount") == "1.000000000000000001");  // exact, as stored
  CHECK(signed_old[0].at("status_age_seconds").get<double>() >= 600);
  CHECK(signed_old[0].at("tx_hash") == "0x" + std::string(64, 'a'));
  CHECK(walletctl_json(schema, {"withdrawals", "list", "--status", "signed", "--older-than", "15m", "--json"}).empty());
  CHECK(ids_of(walletctl_json(schema, {"withdrawals", "list", "--status", "pending", "--json"})) ==
        std::vector<std::int64_t>{pending});

  const auto text = walletctl(schema, {"withdrawals", "list", "--status", "signed"});
  INFO(text.output);
  CHECK(text.code == 0);
  CHECK_THAT(text.output, Catch::Contains("STATUS") && Catch::Contains("AGE") &&
                              Catch::Contains(std::to_string(stuck)) && Catch::Contains("10m"));
  CHECK_THAT(walletctl(schema, {"withdrawals", "list", "--status", "confirmed"}).output,
             Catch::Contains("no withdrawals match"));

  // Bad arguments: exit 2, the message names the flag and what it takes; nothing is queried.
  const auto bad_status = walletctl(schema, {"withdrawals", "list", "--status", "stuck"});
  CHECK(bad_status.code == 2);
  CHECK_THAT(bad_status.output, Catch::Contains("--status must be pending, signed, broadcast, confirmed or failed"));
  const auto bad_age = walletctl(schema, {"withdrawals", "list", "--older-than", "ten"});
  CHECK(bad_age.code == 2);
  CHECK_THAT(bad_age.output, Catch::Contains("--older-than must be a duration"));
}

TEST_CASE("walletctl withdrawals show: status history, transaction versions and the block, text and --json",
          "[walletctl]") {
  test_support::test_schema schema;
  auto db = schema.connect();
  std::int64_t id = 0, failed = 0;
  const std::string first_hash = "0x" + std::string(64, 'c'), bumped_hash = "0x" + std::string(64, 'd');
  const std::string block_hash = "0x" + std::string(64, 'e');
  {
    pqxx::work tx(db);
    tx.exec0("INSERT INTO accounts (user_id, balance) VALUES (2, 10)");
    id = insert_withdrawal(tx, 2, "0.5");
    failed = insert_withdrawal(tx, 2, "0.1");
    tx.commit();
  }
  // The broadcaster's steps, each its own transaction: signed, broadcast, a fee bump, mined, confirmed.
  {
    pqxx::work tx(db);
    sign(tx, id, 7, first_hash);
    tx.commit();
  }
  {
    pqxx::work tx(db);
    tx.exec_params0("UPDATE withdrawal_transactions SET sent_at = now(), last_sent_at = now() WHERE withdrawal_id = $1",
                    id);
    tx.exec_params0("UPDATE withdrawals SET status = 'broadcast', broadcast_at = now() WHERE id = $1", id);
    tx.commit();
  }
  {
    pqxx::work tx(db);
    tx.exec_params0(
        "INSERT INTO withdrawal_transactions (withdrawal_id, kind, nonce, tx_hash, raw_tx, max_fee_per_gas, "
        "max_priority_fee_per_gas, sent_at, last_sent_at) VALUES ($1, 'payment', 7, $2, '\\x03'::bytea, "
        "45000000000, 1500000000, now(), now())",
        id, bumped_hash);
    tx.exec_params0(
        "UPDATE withdrawal_transactions SET mined_block_number = 123456, mined_block_hash = $2, "
        "mined_success = true WHERE tx_hash = $1",
        bumped_hash, block_hash);
    tx.exec_params0("UPDATE withdrawals SET status = 'confirmed', tx_hash = $2, confirmed_at = now() WHERE id = $1", id,
                    bumped_hash);
    // A change that is not a status change records nothing.
    tx.exec_params0("UPDATE withdrawals SET updated_at = now() WHERE id = $1", id);
    tx.exec_params0(
        "UPDATE withdrawals SET status = 'failed', failure_reason = 'rejected: nonce too low', "
        "failed_at = now() WHERE id = $1",
        failed);
    tx.commit();
  }

  const auto shown = walletctl_json(schema, {"withdrawals", "show", std::to_string(id), "--json"});
  CHECK(shown.at("withdrawal").at("status") == "confirmed");
  CHECK(shown.at("withdrawal").at("amount") == "0.500000000000000000");
  CHECK(shown.at("withdrawal").at("nonce") == "7");
  CHECK(shown.at("withdrawal").at("tx_hash") == bumped_hash);
  std::vector<std::string> history;
  for (const auto& h : shown.at("status_history")) history.push_back(h.at("status").get<std::string>());
  CHECK(history == std::vector<std::string>{"pending", "signed", "broadcast", "confirmed"});
  const auto& versions = shown.at("transactions");
  REQUIRE(versions.size() == 2);
  CHECK(versions[0].at("tx_hash") == first_hash);
  CHECK(versions[0].at("max_fee_per_gas") == "30000000000");
  CHECK(versions[0].at("mined_block_number").is_null());
  CHECK(versions[1].at("tx_hash") == bumped_hash);
  CHECK(versions[1].at("max_fee_per_gas") == "45000000000");
  CHECK(versions[1].at("mined_block_number") == "123456");
  CHECK(versions[1].at("mined_block_hash") == block_hash);
  CHECK(versions[1].at("mined_success") == true);

  const auto text = walletctl(schema, {"withdrawals", "show", std::to_string(id)});
  INFO(text.output);
  CHECK(text.code == 0);
  CHECK_THAT(text.output, Catch::Contains("status history") && Catch::Contains("broadcast") &&
                              Catch::Contains("mined in block 123456") && Catch::Contains("not mined") &&
                              Catch::Contains("fees 45000000000 / 1500000000 wei"));

  // A failure keeps its reason in the history.
  const auto failed_shown = walletctl_json(schema, {"withdrawals", "show", std::to_string(failed), "--json"});
  REQUIRE(failed_shown.at("status_history").size() == 2);
  CHECK(failed_shown.at("status_history")[1].at("status") == "failed");
  CHECK(failed_shown.at("status_history")[1].at("reason") == "rejected: nonce too low");
  CHECK(failed_shown.at("transactions").empty());

  const auto missing = walletctl(schema, {"withdrawals", "show", "999999999"});
  CHECK(missing.code == 1);
  CHECK_THAT(missing.output, Catch::Contains("withdrawal 999999999 does not exist"));
}

TEST_CASE("walletctl dead-letters list --json and outbox status --json", "[walletctl]") {
  test_support::test_schema schema;
  auto db = schema.connect();
  {
    pqxx::work tx(db);
    tx.exec0(
        "INSERT INTO outbox_messages (topic, key, payload) VALUES ('wallet_events_withdrawal', '1', 'a'), "
        "('wallet_events_withdrawal', '2', 'b')");
    tx.exec0(
        "INSERT INTO outbox_dead_letters (id, topic, key, payload, headers, created_at, attempts, last_error) "
        "VALUES (424242, 'wallet_events_withdrawal', '3', 'ccc', '{}', now(), 5, 'Broker: Message size too large')");
    tx.commit();
  }
  const auto letters = walletctl_json(schema, {"dead-letters", "list", "--json"});
  REQUIRE(letters.size() == 1);
  CHECK(letters[0].at("id") == 424242);
  CHECK(letters[0].at("key") == "3");
  CHECK(letters[0].at("payload_bytes") == 3);
  CHECK(letters[0].at("attempts") == 5);
  CHECK(letters[0].at("last_error") == "Broker: Message size too large");

  const auto status = walletctl_json(schema, {"outbox", "status", "--json"});
  CHECK(status.at("schema") == schema.name());
  CHECK(status.at("pending") == 2);
  CHECK(status.at("dead_letters") == 1);
  CHECK(status.at("oldest_age_seconds").get<double>() >= 0);
  REQUIRE(status.at("topics").size() == 1);
  CHECK(status.at("topics")[0].at("topic") == "wallet_events_withdrawal");
  CHECK(status.at("topics")[0].at("pending") == 2);
  CHECK(status.at("relays").empty());

  // No dead letters: an empty JSON array, not the text "no dead letters".
  {
    pqxx::work tx(db);
    tx.exec0("DELETE FROM outbox_dead_letters");
    tx.commit();
  }
  CHECK(walletctl_json(schema, {"dead-letters", "list", "--json"}).empty());
}
