#pragma once
// PostgreSQL glue shared by the daemons: connection settings, a bounded connection pool
// and the classification of errors into "retry" and "give up".

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <string>
#include <vector>

#include <pqxx/connection>

#include "common/config.hpp"

namespace common {

struct database_config {
  /// libpq URI, e.g. postgresql://outbox@127.0.0.1:55432/outbox. No password here: see `password`.
  std::string url = "postgresql://outbox@127.0.0.1:55432/outbox";
  /// From DATABASE_PASSWORD, DATABASE_PASSWORD_FILE or the systemd credential "database-password".
  secret password;
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(5)};
  /// Shown in pg_stat_activity.application_name.
  std::string application_name;
};

/// Reads [database] url and connect_timeout (alias DATABASE_URL) and the password secret.
database_config parse_database_config(config_reader& reader, std::string application_name);

/// The libpq connection string with password, connect_timeout and application_name applied.
/// Holds the password: never log it (log redacted_url() instead).
std::string connection_string(const database_config& config);

/// The URL without credentials, for logs.
std::string redacted_url(const std::string& url);

/// What a database error means for the work that raised it. One classification for every daemon.
enum class db_error_kind {
  connection_lost,  ///< broken connection, 08xxx, admin/crash shutdown, cannot connect now (57P01-03):
                    ///< retry on a fresh connection; the pool's idle connections are likely dead too
  rolled_back,      ///< serialization failure (40001) or deadlock (40P01): retry the transaction
  timeout,          ///< statement_timeout (57014) or lock_timeout (55P03): the server is slow or a row is busy
  resource,         ///< 53xxx (disk, memory, connections) or no free pooled connection in time
  in_doubt,         ///< the COMMIT was sent and its outcome is unknown: check, never retry blindly
  permanent,        ///< anything else: a constraint, bad data, a bug
};

db_error_kind classify(const std::exception& error) noexcept;

/// connection_lost and rolled_back: the same work may run again as it is.
bool is_retryable(const std::exception& error) noexcept;

std::string_view to_string(db_error_kind kind) noexcept;

/// A bounded pool of connections, created lazily and replaced when broken.
/// Thread-safe. acquire() blocks at most `acquire_timeout`; it throws pool_timeout then.
class connection_pool {
 public:
  struct pool_timeout : std::runtime_error {
    pool_timeout() : std::runtime_error("database: no free connection within the acquire timeout") {}
  };

  class lease {
   public:
    lease(lease&& other) noexcept : pool_(other.pool_), connection_(std::move(other.connection_)) {}
    lease& operator=(lease&&) = delete;
    ~lease();
    pqxx::connection& operator*() const noexcept { return *connection_; }
    pqxx::connection* operator->() const noexcept { return connection_.get(); }
    /// Drop the connection instead of returning it (after an error left it in doubt).
    void discard() noexcept { connection_.reset(); }

   private:
    friend class connection_pool;
    lease(connection_pool& pool, std::unique_ptr<pqxx::connection> connection)
        : pool_(&pool), connection_(std::move(connection)) {}
    connection_pool* pool_;
    std::unique_ptr<pqxx::connection> connection_;
  };

  /// Runs once on every new connection before it is handed out (session settings, prepared
  /// statements); what it throws reaches the caller of acquire() and the connection is dropped.
  using connection_setup = std::function<void(pqxx::connection&)>;

  connection_pool(database_config config, std::size_t size, std::chrono::milliseconds acquire_timeout,
                  connection_setup on_connect = {});
  ~connection_pool();

  /// Throws pool_timeout, or pqxx::broken_connection when a new connection cannot be opened.
  lease acquire();

  std::size_t size() const noexcept { return size_; }
  /// Connections handed out right now (for metrics).
  std::size_t in_use() const;
  /// Closes the idle connections. Call after one of them turned out broken: the server may have
  /// restarted, and every connection opened before that is dead too.
  void discard_idle() noexcept;

 private:
  void give_back(std::unique_ptr<pqxx::connection> connection) noexcept;

  const std::string connection_string_;
  const std::size_t size_;
  const std::chrono::milliseconds acquire_timeout_;
  const connection_setup on_connect_;
  mutable std::mutex mutex_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;
  std::size_t in_use_ = 0;
};

/// How perform() retries: attempts in all, and the jittered backoff between them.
struct retry_policy {
  unsigned max_attempts = 3;
  std::chrono::milliseconds first_delay{5};
  std::chrono::milliseconds max_delay{100};
};

/// perform() gave up: the work did not happen (or, when kind is in_doubt, may have happened).
class database_failure : public std::runtime_error {
 public:
  database_failure(db_error_kind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  db_error_kind kind() const noexcept { return kind_; }
  bool in_doubt() const noexcept { return kind_ == db_error_kind::in_doubt; }

 private:
  db_error_kind kind_;
};

class backoff;

namespace detail {
/// perform()'s bookkeeping between attempts. after_failure() is called inside a catch block: it
/// returns after the backoff when the work may run again, rethrows a permanent error as it is and
/// throws database_failure for the rest.
class retry_state {
 public:
  retry_state(connection_pool& pool, std::string_view what, const retry_policy& policy);
  ~retry_state();
  void after_failure(const std::exception& error);

 private:
  connection_pool& pool_;
  std::string_view what_;
  const retry_policy& policy_;
  unsigned attempt_ = 1;
  std::unique_ptr<backoff> delays_;  // built on the first retry: seeding it reads the OS's entropy
};
}  // namespace detail

/// Runs `work(pqxx::connection&)` on a pooled connection, the way libpqxx's perform() runs a
/// transactor: a connection loss, serialization failure or deadlock runs it again (up to
/// policy.max_attempts, on a fresh connection); a timeout, a resource shortage or an in-doubt
/// commit throws database_failure at once (an in-doubt commit is never retried blindly: the caller
/// checks its outcome, e.g. by an idempotency key); any other error propagates unchanged. The
/// connection is dropped after any exception: a failed statement may leave the session in any state.
/// `work` must be safe to run again from the start (open its own transaction inside).
template <class Work>
auto perform(connection_pool& pool, std::string_view what, const retry_policy& policy, Work&& work) {
  detail::retry_state state(pool, what, policy);
  for (;;) {
    try {
      auto connection = pool.acquire();
      try {
        return work(*connection);
      } catch (...) {
        connection.discard();
        throw;
      }
    } catch (const std::exception& e) {
      state.after_failure(e);
    }
  }
}

}  // namespace common
