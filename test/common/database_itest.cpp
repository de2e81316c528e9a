#include <catch2/catch.hpp>

#include <thread>

#include <pqxx/pqxx>

#include "common/database.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;

TEST_CASE("database: the schema enforces money rules", "[database]") {
  test_support::test_schema schema;
  auto c = schema.connect();
  pqxx::work tx(c);
  tx.exec0("INSERT INTO accounts (user_id, balance) VALUES (1, '1.000000000000000001')");
  // numeric keeps every wei: no rounding through floating point anywhere.
  CHECK(tx.exec1("SELECT balance::text FROM accounts WHERE user_id = 1")[0].as<std::string>() ==
        "1.000000000000000001");
  CHECK_THROWS_AS(tx.exec0("UPDATE accounts SET balance = balance - 2 WHERE user_id = 1"), pqxx::check_violation);
}

TEST_CASE("database: an outbox insert notifies listeners with the schema's name", "[database]") {
  test_support::test_schema schema;
  auto listener = schema.connect();
  struct receiver : pqxx::notification_receiver {
    using pqxx::notification_receiver::notification_receiver;
    void operator()(const std::string& payload, int) override { payloads.push_back(payload); }
    std::vector<std::string> payloads;
  } r(listener, "outbox_messages");
  {
    auto writer = schema.connect();
    pqxx::work tx(writer);
    tx.exec0("INSERT INTO outbox_messages (topic, key, payload) VALUES ('t', 'k', 'x'), ('t', 'k', 'y')");
    tx.commit();
  }
  CHECK(test_support::wait_until(
      [&] {
        listener.get_notifs();
        return !r.payloads.empty();
      },
      5s));
  REQUIRE(r.payloads.size() == 1);  // one statement, one notification
  CHECK(r.payloads[0] == schema.name());
}

TEST_CASE("database: the pool bounds connections and replaces broken ones", "[database]") {
  test_support::test_schema schema;
  common::connection_pool pool(schema.database_config("pool-test"), 2, 200ms);
  int first_pid = 0;
  {
    auto a = pool.acquire();
    auto b = pool.acquire();
    CHECK(pool.in_use() == 2);
    CHECK_THROWS_AS(pool.acquire(), common::connection_pool::pool_timeout);
    first_pid = a->backendpid();
    // Kill a's backend as a database restart would.
    pqxx::nontransaction(*b).exec_params("SELECT pg_terminate_backend($1)", first_pid);
    try {
      pqxx::nontransaction(*a).exec0("SELECT 1");
      FAIL("the terminated connection still worked");
    } catch (const pqxx::broken_connection& e) {
      CHECK(common::is_retryable(e));
    } catch (const pqxx::sql_error& e) {
      CHECK(common::is_retryable(e));
    }
  }
  CHECK(pool.in_use() == 0);
  // Both come back usable: the broken one was dropped and replaced.
  auto a = pool.acquire();
  auto b = pool.acquire();
  CHECK(pqxx::nontransaction(*a).exec1("SELECT 1")[0].as<int>() == 1);
  CHECK(pqxx::nontransaction(*b).exec1("SELECT 1")[0].as<int>() == 1);
}

TEST_CASE("database: perform() runs the work again after a lost connection and a serialization failure", "[database]") {
  test_support::test_schema schema;
  common::connection_pool pool(schema.database_config("perform-test"), 2, 1s);
  int runs = 0;
  const auto answer = common::perform(pool, "test work", common::retry_policy{}, [&](pqxx::connection& c) {
    ++runs;
    if (runs == 1) {
      // The server ends this very session, as a restart would: the next run needs a fresh connection.
      pqxx::nontransaction(c).exec1("SELECT pg_terminate_backend(pg_backend_pid())");
    }
    pqxx::work tx(c);
    if (runs == 2) tx.exec0("DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '40001'; END $$");
    const int value = tx.exec1("SELECT 42")[0].as<int>();
    tx.commit();
    return value;
  });
  CHECK(answer == 42);
  CHECK(runs == 3);
  CHECK(pool.in_use() == 0);
}

TEST_CASE("database: perform() gives up after max_attempts and never retries a timeout or a constraint", "[database]") {
  test_support::test_schema schema;
  common::connection_pool pool(schema.database_config("perform-test"), 2, 1s);
  int runs = 0;
  const auto deadlock = [&](pqxx::connection& c) {
    ++runs;
    pqxx::work tx(c);
    tx.exec0("DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '40P01'; END $$");
  };
  try {
    common::perform(pool, "deadlocking work", common::retry_policy{2, 1ms, 2ms}, deadlock);
    FAIL("perform() returned");
  } catch (const common::database_failure& e) {
    CHECK(e.kind() == common::db_error_kind::rolled_back);
    CHECK_FALSE(e.in_doubt());
  }
  CHECK(runs == 2);

  runs = 0;
  const auto slow = [&](pqxx::connection& c) {
    ++runs;
    pqxx::work tx(c);
    tx.exec0("SET LOCAL statement_timeout = 10");
    tx.exec0("SELECT pg_sleep(1)");
  };
  try {
    common::perform(pool, "slow work", common::retry_policy{}, slow);
    FAIL("perform() returned");
  } catch (const common::database_failure& e) {
    CHECK(e.kind() == common::db_error_kind::timeout);
  }
  CHECK(runs == 1);

  runs = 0;
  const auto overdraft = [&](pqxx::connection& c) {
    ++runs;
    pqxx::work tx(c);
    tx.exec0("INSERT INTO accounts (user_id, balance) VALUES (7, -1)");
  };
  CHECK_THROWS_AS(common::perform(pool, "bad insert", common::retry_policy{}, overdraft), pqxx::check_violation);
  CHECK(runs == 1);
}
