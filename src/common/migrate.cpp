#include "common/migrate.hpp"

#include <algorithm>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string_view>

#include <boost/crc.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <pqxx/pqxx>
#include <spdlog/spdlog.h>

namespace common {

namespace {

/// CMAKE_HOME_DIRECTORY of the build directory holding `cache` (a CMakeCache.txt), if readable.
std::optional<std::filesystem::path> configured_source_dir(const std::filesystem::path& cache) {
  std::ifstream in(cache);
  std::string line;
  static constexpr std::string_view key = "CMAKE_HOME_DIRECTORY:INTERNAL=";
  while (std::getline(in, line)) {
    if (line.starts_with(key)) return std::filesystem::path(line.substr(key.size()));
  }
  return std::nullopt;
}

}  // namespace

std::filesystem::path default_migrations_dir(const std::optional<std::filesystem::path>& explicit_dir) {
  if (explicit_dir) return *explicit_dir;
  if (const char* dir = std::getenv("OUTBOX_MIGRATIONS_DIR"); dir && *dir) return dir;
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  std::vector<std::string> looked;
  if (!ec) {
    const auto prefix = exe.parent_path().parent_path();
    const auto installed = prefix / "share" / "wallet-outbox" / "migrations";
    if (std::filesystem::is_directory(installed, ec)) return installed;
    looked.push_back(installed.string());
    if (const auto source = configured_source_dir(prefix / "CMakeCache.txt")) {
      const auto tree = *source / "sql" / "migrations";
      if (std::filesystem::is_directory(tree, ec)) return tree;
      looked.push_back(tree.string());
    }
  }
  throw migration_error(fmt::format(
      "migrations: no migrations folder found (looked in {}): pass --migrations DIR or set OUTBOX_MIGRATIONS_DIR",
      looked.empty() ? std::string("nothing: /proc/self/exe unreadable") : fmt::format("{}", fmt::join(looked, ", "))));
}

namespace {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw migration_error(fmt::format("migrations: cannot read {}", path.string()));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace

migrator::migrator(pqxx::connection& connection, std::filesystem::path dir) : connection_(connection) {
  if (!std::filesystem::is_directory(dir)) {
    throw migration_error(
        fmt::format("migrations: {} is not a directory (--migrations DIR or OUTBOX_MIGRATIONS_DIR)", dir.string()));
  }
  static const std::regex file_name(R"(^(\d+)_([A-Za-z0-9_]+)\.(up|down)\.sql$)");
  std::map<std::int64_t, migration> by_version;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    std::smatch match;
    if (!std::regex_match(name, match, file_name)) {
      if (entry.path().extension() == ".sql") {
        throw migration_error(fmt::format("migrations: {} does not match <version>_<name>.(up|down).sql", name));
      }
      continue;
    }
    const auto version = std::stoll(match[1].str());
    auto& m = by_version[version];
    if (!m.name.empty() && m.name != match[2].str()) {
      throw migration_error(
          fmt::format("migrations: version {} has two names: {} and {}", version, m.name, match[2].str()));
    }
    m.version = version;
    m.name = match[2].str();
    (match[3] == "up" ? m.up : m.down) = entry.path();
  }
  for (auto& [version, m] : by_version) {
    if (m.up.empty() || m.down.empty()) {
      throw migration_error(
          fmt::format("migrations: version {} ({}) needs both an .up.sql and a .down.sql file", version, m.name));
    }
    migrations_.push_back(std::move(m));
  }
}

// Holds golang-migrate's advisory lock for the duration of a migrate command.
class migrator::lock_guard {
 public:
  explicit lock_guard(pqxx::connection& connection) : connection_(connection) {
    pqxx::nontransaction tx(connection_);
    const auto row = tx.exec1("SELECT current_schema(), current_database()");
    const char nul = '\0';
    const std::string key = row[0].as<std::string>() + nul + "schema_migrations" + nul + row[1].as<std::string>();
    boost::crc_32_type crc;
    crc.process_bytes(key.data(), key.size());
    lock_id_ = static_cast<std::uint32_t>(crc.checksum() * 1486364155U);
    tx.exec_params("SELECT pg_advisory_lock($1)", static_cast<std::int64_t>(lock_id_));
  }
  ~lock_guard() {
    try {
      pqxx::nontransaction tx(connection_);
      tx.exec_params("SELECT pg_advisory_unlock($1)", static_cast<std::int64_t>(lock_id_));
    } catch (const std::exception& e) {
      spdlog::warn("migrations: releasing the advisory lock failed ({}); it ends with the session", e.what());
    }
  }
  lock_guard(const lock_guard&) = delete;
  lock_guard& operator=(const lock_guard&) = delete;

 private:
  pqxx::connection& connection_;
  std::uint32_t lock_id_ = 0;
};

void migrator::ensure_table() {
  pqxx::work tx(connection_);
  tx.exec0(
      "CREATE TABLE IF NOT EXISTS schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)");
  tx.commit();
}

migration_state migrator::state() {
  ensure_table();
  pqxx::read_transaction tx(connection_);
  const auto rows = tx.exec("SELECT version, dirty FROM schema_migrations LIMIT 1");
  if (rows.empty()) return {};
  return migration_state{rows[0][0].as<std::int64_t>(), rows[0][1].as<bool>()};
}

void migrator::run(const migration& m, bool up, std::optional<std::int64_t> resulting_version) {
  const auto& path = up ? m.up : m.down;
  const std::string sql = read_file(path);
  try {
    pqxx::work tx(connection_);
    tx.exec0(sql);
    tx.exec0("DELETE FROM schema_migrations");
    if (resulting_version) {
      tx.exec_params0("INSERT INTO schema_migrations (version, dirty) VALUES ($1, false)", *resulting_version);
    }
    tx.commit();
  } catch (const pqxx::sql_error& e) {
    throw migration_error(
        fmt::format("migrations: {} failed, nothing of it was applied: {}", path.filename().string(), e.what()));
  }
  spdlog::info("migrations: {} {:06}_{}", up ? "applied" : "reverted", m.version, m.name);
}

migration_state migrator::clean_state() {
  auto current = state();
  if (current.dirty) {
    throw migration_error(
        fmt::format("migrations: database is dirty at version {}: fix it by hand, then "
                    "`walletctl migrate force <version>`",
                    current.version.value_or(-1)));
  }
  return current;
}

std::vector<std::int64_t> migrator::up(std::optional<std::size_t> steps) {
  ensure_table();
  lock_guard lock(connection_);
  const auto current = clean_state();
  std::vector<std::int64_t> applied;
  for (const auto& m : migrations_) {
    if (current.version && m.version <= *current.version) continue;
    if (steps && applied.size() >= *steps) break;
    run(m, true, m.version);
    applied.push_back(m.version);
  }
  return applied;
}

std::vector<std::int64_t> migrator::down(std::size_t steps) {
  ensure_table();
  lock_guard lock(connection_);
  const auto current = clean_state();
  std::vector<std::int64_t> reverted;
  if (!current.version) return reverted;
  auto it = std::find_if(migrations_.rbegin(), migrations_.rend(),
                         [&](const migration& m) { return m.version == *current.version; });
  if (it == migrations_.rend()) {
    throw migration_error(
        fmt::format("migrations: database is at version {}, which is not in the folder", *current.version));
  }
  for (; it != migrations_.rend() && reverted.size() < steps; ++it) {
    const auto previous = std::next(it);
    run(*it, false, previous == migrations_.rend() ? std::nullopt : std::optional(previous->version));
    reverted.push_back(it->version);
  }
  return reverted;
}

void migrator::force(std::int64_t version) {
  ensure_table();
  lock_guard lock(connection_);
  pqxx::work tx(connection_);
  tx.exec0("DELETE FROM schema_migrations");
  if (version >= 0) tx.exec_params0("INSERT INTO schema_migrations (version, dirty) VALUES ($1, false)", version);
  tx.commit();
}

}  // namespace common
