#include "common/database.hpp"

#include <regex>
#include <thread>

#include <fmt/format.h>
#include <pqxx/except>
#include <spdlog/spdlog.h>

#include "common/backoff.hpp"

namespace common {

database_config parse_database_config(config_reader& reader, std::string application_name) {
  database_config config;
  config.url = reader.get_string("database.url", config.url, {"DATABASE_URL"});
  if (config.url.rfind("postgresql://", 0) != 0 && config.url.rfind("postgres://", 0) != 0) {
    throw config_error("database.url",
                       fmt::format("database.url must be a postgresql:// URI, got \"{}\"", redacted_url(config.url)));
  }
  config.connect_timeout = reader.get_duration("database.connect_timeout", config.connect_timeout,
                                               std::chrono::seconds(1), std::chrono::minutes(5));
  config.password = read_secret("database-password", "DATABASE_PASSWORD");
  config.application_name = std::move(application_name);
  return config;
}

namespace {
std::string percent_encode(const std::string& value) {
  std::string out;
  for (const char ch : value) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += ch;
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}
}  // namespace

std::string connection_string(const database_config& config) {
  std::string out = config.url;
  char separator = out.find('?') == std::string::npos ? '?' : '&';
  auto add = [&](std::string_view name, const std::string& value) {
    out += fmt::format("{}{}={}", separator, name, percent_encode(value));
    separator = '&';
  };
  const auto timeout_s = std::chrono::duration_cast<std::chrono::seconds>(config.connect_timeout).count();
  add("connect_timeout", std::to_string(std::max<long long>(1, timeout_s)));
  if (!config.application_name.empty()) add("application_name", config.application_name);
  if (!config.password.empty()) add("password", config.password.reveal());
  return out;
}

std::string redacted_url(const std::string& url) {
  static const std::regex credentials(R"(://([^:@/]+):[^@/]*@)");
  static const std::regex password_param(R"(([?&]password=)[^&]*)");
  return std::regex_replace(std::regex_replace(url, credentials, "://$1:***@"), password_param, "$1***");
}

db_error_kind classify(const std::exception& error) noexcept {
  if (dynamic_cast<const pqxx::in_doubt_error*>(&error) != nullptr) return db_error_kind::in_doubt;
  if (dynamic_cast<const connection_pool::pool_timeout*>(&error) != nullptr) return db_error_kind::resource;
  if (dynamic_cast<const pqxx::broken_connection*>(&error) != nullptr) return db_error_kind::connection_lost;
  if (dynamic_cast<const pqxx::transaction_rollback*>(&error) != nullptr) return db_error_kind::rolled_back;
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&error)) {
    const std::string& state = sql->sqlstate();
    if (state == "40001" || state == "40P01") return db_error_kind::rolled_back;
    if (state == "57P01" || state == "57P02" || state == "57P03" || state.rfind("08", 0) == 0) {
      return db_error_kind::connection_lost;
    }
    if (state == "57014" || state == "55P03") return db_error_kind::timeout;
    if (state.rfind("53", 0) == 0) return db_error_kind::resource;
  }
  return db_error_kind::permanent;
}

bool is_retryable(const std::exception& error) noexcept {
  const auto kind = classify(error);
  return kind == db_error_kind::connection_lost || kind == db_error_kind::rolled_back;
}

std::string_view to_string(db_error_kind kind) noexcept {
  switch (kind) {
    case db_error_kind::connection_lost:
      return "connection lost";
    case db_error_kind::rolled_back:
      return "rolled back";
    case db_error_kind::timeout:
      return "timeout";
    case db_error_kind::resource:
      return "out of resources";
    case db_error_kind::in_doubt:
      return "commit in doubt";
    case db_error_kind::permanent:
      return "permanent";
  }
  return "unknown";
}

namespace detail {

retry_state::retry_state(connection_pool& pool, std::string_view what, const retry_policy& policy)
    : pool_(pool), what_(what), policy_(policy) {}

retry_state::~retry_state() = default;

void retry_state::after_failure(const std::exception& error) {
  const auto kind = classify(error);
  switch (kind) {
    case db_error_kind::permanent:
      throw;  // the caller's own errors (constraints, data) reach it unchanged
    case db_error_kind::in_doubt:
      spdlog::error("{}: commit outcome unknown: {}", what_, error.what());
      throw database_failure(kind,
                             fmt::format("{}: the connection broke during COMMIT; the outcome is unknown", what_));
    case db_error_kind::timeout:
    case db_error_kind::resource:
      throw database_failure(kind, fmt::format("{}: {}: {}", what_, to_string(kind), error.what()));
    case db_error_kind::connection_lost:
      pool_.discard_idle();  // the retry must not land on another connection that died the same way
      break;
    case db_error_kind::rolled_back:
      break;
  }
  if (attempt_ >= policy_.max_attempts) {
    throw database_failure(kind, fmt::format("{}: gave up after {} attempts: {}", what_, attempt_, error.what()));
  }
  spdlog::warn("{}: attempt {} of {} failed ({}), retrying: {}", what_, attempt_, policy_.max_attempts, to_string(kind),
               error.what());
  ++attempt_;
  if (!delays_) delays_ = std::make_unique<backoff>(policy_.first_delay, policy_.max_delay);
  std::this_thread::sleep_for(delays_->next());
}

}  // namespace detail

connection_pool::connection_pool(database_config config, std::size_t size, std::chrono::milliseconds acquire_timeout,
                                 connection_setup on_connect)
    : connection_string_(connection_string(config)),
      size_(size),
      acquire_timeout_(acquire_timeout),
      on_connect_(std::move(on_connect)) {}

connection_pool::~connection_pool() = default;

connection_pool::lease::~lease() {
  if (pool_ != nullptr) pool_->give_back(std::move(connection_));
}

connection_pool::lease connection_pool::acquire() {
  std::unique_lock lock(mutex_);
  if (!available_.wait_for(lock, acquire_timeout_, [&] { return in_use_ < size_; })) throw pool_timeout();
  ++in_use_;
  std::unique_ptr<pqxx::connection> connection;
  while (!idle_.empty() && !connection) {
    connection = std::move(idle_.back());
    idle_.pop_back();
    if (!connection->is_open()) connection.reset();
  }
  lock.unlock();
  if (!connection) {
    try {
      connection = std::make_unique<pqxx::connection>(connection_string_);
      if (on_connect_) on_connect_(*connection);
    } catch (...) {
      give_back(nullptr);
      throw;
    }
  }
  return lease(*this, std::move(connection));
}

std::size_t connection_pool::in_use() const {
  std::lock_guard lock(mutex_);
  return in_use_;
}

void connection_pool::discard_idle() noexcept {
  std::vector<std::unique_ptr<pqxx::connection>> dropped;
  {
    std::lock_guard lock(mutex_);
    dropped.swap(idle_);
  }
  // Closed here, outside the lock.
}

void connection_pool::give_back(std::unique_ptr<pqxx::connection> connection) noexcept {
  {
    std::lock_guard lock(mutex_);
    --in_use_;
    if (connection && connection->is_open()) idle_.push_back(std::move(connection));
  }
  available_.notify_one();
}

}  // namespace common
