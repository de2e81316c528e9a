#pragma once
// Schema migrations in golang-migrate's format and bookkeeping, so the standard `migrate` CLI
// and walletctl can manage the same database:
//   <dir>/000001_init.up.sql, <dir>/000001_init.down.sql, ...
//   table schema_migrations(version bigint primary key, dirty boolean) with at most one row,
//   pg_advisory_lock(id) held while migrating, id derived as golang-migrate derives it
//   (CRC-32 of "<schema>\0schema_migrations\0<database>" times 1486364155).
// Tables land in the connection's current schema (search_path), so a test can migrate its own schema.
//
// Each migration runs in its own transaction together with its version update; a failing
// migration leaves the database at the previous clean version. A database left dirty by another
// tool is refused until `force`d.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <pqxx/connection>

namespace common {

struct migration {
  std::int64_t version = 0;
  std::string name;  // "init" for 000001_init.up.sql
  std::filesystem::path up;
  std::filesystem::path down;
};

struct migration_state {
  std::optional<std::int64_t> version;  // nullopt: nothing applied
  bool dirty = false;
};

class migration_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The migrations folder, the first of:
///   1. `explicit_dir` (walletctl's --migrations DIR), used as given;
///   2. $OUTBOX_MIGRATIONS_DIR;
///   3. the installed layout next to the running executable: <bin>/../share/wallet-outbox/migrations
///      (/usr/bin/walletctl -> /usr/share/wallet-outbox/migrations), when that folder exists;
///   4. for a program run from a CMake build directory (<build>/bin, <build>/test-bin): the source
///      tree that build was configured from (CMAKE_HOME_DIRECTORY in <build>/CMakeCache.txt), plus
///      sql/migrations.
/// Found at run time from /proc/self/exe: no build-machine path is compiled in. Throws
/// migration_error naming the places it looked when none applies.
std::filesystem::path default_migrations_dir(const std::optional<std::filesystem::path>& explicit_dir = std::nullopt);

class migrator {
 public:
  /// Reads and validates the folder (pairs of up/down files, unique versions).
  /// Throws migration_error naming the offending file.
  migrator(pqxx::connection& connection, std::filesystem::path dir);

  const std::vector<migration>& available() const noexcept { return migrations_; }
  migration_state state();

  /// Applies up to `steps` pending migrations (all when nullopt); returns the versions applied.
  std::vector<std::int64_t> up(std::optional<std::size_t> steps = std::nullopt);
  /// Reverts `steps` applied migrations, newest first; returns the versions reverted.
  std::vector<std::int64_t> down(std::size_t steps);
  /// Sets the recorded version without running anything and clears `dirty` (-1: no version).
  void force(std::int64_t version);

 private:
  class lock_guard;
  void ensure_table();
  /// state(), refusing a dirty one (a failed migration needs an operator). Call under the lock.
  migration_state clean_state();
  void run(const migration& m, bool up, std::optional<std::int64_t> resulting_version);

  pqxx::connection& connection_;
  std::vector<migration> migrations_;
};

}  // namespace common
