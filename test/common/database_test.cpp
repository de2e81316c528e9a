#include <catch2/catch.hpp>

#include <pqxx/except>

#include "common/database.hpp"

using common::db_error_kind;

namespace {
db_error_kind kind_of_state(const char* sqlstate) {
  return common::classify(pqxx::sql_error("x", "SELECT 1", sqlstate));
}
}  // namespace

TEST_CASE("database: one classification of PostgreSQL errors", "[database]") {
  CHECK(common::classify(pqxx::broken_connection("gone")) == db_error_kind::connection_lost);
  CHECK(common::classify(pqxx::in_doubt_error("commit")) == db_error_kind::in_doubt);
  CHECK(common::classify(pqxx::serialization_failure("could not serialize access")) == db_error_kind::rolled_back);
  CHECK(common::classify(pqxx::deadlock_detected("deadlock detected")) == db_error_kind::rolled_back);
  CHECK(common::classify(common::connection_pool::pool_timeout()) == db_error_kind::resource);
  CHECK(kind_of_state("57P01") == db_error_kind::connection_lost);  // admin_shutdown
  CHECK(kind_of_state("57P02") == db_error_kind::connection_lost);  // crash_shutdown
  CHECK(kind_of_state("57P03") == db_error_kind::connection_lost);  // cannot_connect_now
  CHECK(kind_of_state("08006") == db_error_kind::connection_lost);
  CHECK(kind_of_state("57014") == db_error_kind::timeout);    // statement_timeout
  CHECK(kind_of_state("55P03") == db_error_kind::timeout);    // lock_timeout
  CHECK(kind_of_state("53100") == db_error_kind::resource);   // disk_full
  CHECK(kind_of_state("53300") == db_error_kind::resource);   // too_many_connections
  CHECK(kind_of_state("23505") == db_error_kind::permanent);  // unique_violation
  CHECK(kind_of_state("22003") == db_error_kind::permanent);
  CHECK(common::classify(std::runtime_error("not a database error")) == db_error_kind::permanent);

  CHECK(common::is_retryable(pqxx::broken_connection("gone")));
  CHECK(common::is_retryable(pqxx::serialization_failure("could not serialize access")));
  CHECK_FALSE(common::is_retryable(pqxx::in_doubt_error("commit")));  // an in-doubt commit is checked, never retried
  CHECK_FALSE(common::is_retryable(pqxx::sql_error("x", "q", "57014")));
}
