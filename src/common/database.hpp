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

/// True for errors after which the same work may be retried on a fresh connection or
/// transaction: broken connections, serialization failures, deadlocks, "cannot connect now".
/// False for in-doubt commits (pqxx::in_doubt_error): their outcome must be checked, not retried.
bool is_retryable(const std::exception& error) noexcept;

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

}  // namespace common
