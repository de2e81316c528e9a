#include <filesystem>

#include <catch2/catch.hpp>

#include <pqxx/pqxx>

#include "common/migrate.hpp"
#include "test_support.hpp"

namespace {

int count_tables(pqxx::connection& c, const std::string& schema) {
  pqxx::read_transaction tx(c);
  return tx
      .exec_params1("SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename <> 'schema_migrations'",
                    schema)[0]
      .as<int>();
}

}  // namespace

TEST_CASE("migrations: up, down, up again leaves the same schema and golang-migrate's bookkeeping", "[migrate]") {
  test_support::test_schema schema(test_support::test_schema::migrations::none);
  pqxx::connection connection(schema.url());
  common::migrator migrator(connection, common::default_migrations_dir());
  REQUIRE_FALSE(migrator.available().empty());
  const auto latest = migrator.available().back().version;

  CHECK_FALSE(migrator.state().version.has_value());
  const auto applied = migrator.up();
  CHECK(applied.size() == migrator.available().size());
  CHECK(migrator.state().version == latest);
  CHECK_FALSE(migrator.state().dirty);
  const int tables = count_tables(connection, schema.name());
  CHECK(tables >= 5);
  CHECK(migrator.up().empty());  // nothing pending: a second up is harmless

  // golang-migrate's table: one row (version bigint, dirty boolean).
  {
    pqxx::read_transaction tx(connection);
    const auto rows = tx.exec("SELECT version, dirty FROM schema_migrations");
    REQUIRE(rows.size() == 1);
    CHECK(rows[0][0].as<std::int64_t>() == latest);
    CHECK_FALSE(rows[0][1].as<bool>());
  }

  const auto reverted = migrator.down(migrator.available().size());
  CHECK(reverted.size() == migrator.available().size());
  CHECK_FALSE(migrator.state().version.has_value());
  CHECK(count_tables(connection, schema.name()) == 0);

  migrator.up();
  CHECK(migrator.state().version == latest);
  CHECK(count_tables(connection, schema.name()) == tables);
}

TEST_CASE("migrations: a dirty database is refused until forced", "[migrate]") {
  test_support::test_schema schema(test_support::test_schema::migrations::none);
  pqxx::connection connection(schema.url());
  common::migrator migrator(connection, common::default_migrations_dir());
  migrator.up();
  {
    pqxx::work tx(connection);
    tx.exec0("UPDATE schema_migrations SET dirty = true");
    tx.commit();
  }
  CHECK_THROWS_WITH(migrator.up(), Catch::Contains("dirty") && Catch::Contains("force"));
  migrator.force(migrator.available().back().version);
  CHECK_FALSE(migrator.state().dirty);
  CHECK(migrator.up().empty());
}

TEST_CASE("walletctl migrate status|up|down runs against the database", "[migrate][walletctl]") {
  test_support::test_schema schema(test_support::test_schema::migrations::none);
  std::vector<std::string> outputs;
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"migrate", "up"}, {"migrate", "status"}, {"migrate", "down"}, {"migrate", "status"}}) {
    test_support::child_process p(test_support::bin_path("walletctl"), args, {{"DATABASE_URL", schema.url()}},
                                  test_support::new_log_path("walletctl"));
    REQUIRE(p.wait(std::chrono::seconds(30)) == 0);
    outputs.push_back(p.log());
  }
  CHECK_THAT(outputs[0], Catch::Contains("applied"));
  CHECK_THAT(outputs[1], Catch::Contains("000001") && Catch::Contains("applied"));
  CHECK_THAT(outputs[2], Catch::Contains("reverted 1 migration"));
  CHECK_THAT(outputs[3], Catch::Contains("pending"));
}

TEST_CASE("walletctl finds its migrations at run time: --migrations, the installed layout, else a clear error",
          "[migrate][walletctl]") {
  // A copy of walletctl in a scratch prefix, outside the build tree: nothing tells it where the
  // source tree is. The prefix's migration folder holds only 000001, so `status` shows which
  // folder was read.
  namespace fs = std::filesystem;
  test_support::test_schema schema(test_support::test_schema::migrations::none);
  const auto prefix = fs::temp_directory_path() / test_support::unique_name("prefix");
  const auto installed = prefix / "share" / "wallet-outbox" / "migrations";
  fs::create_directories(prefix / "bin");
  fs::create_directories(installed);
  fs::copy_file(test_support::bin_path("walletctl"), prefix / "bin" / "walletctl");
  const auto source = fs::path(OUTBOX_SOURCE_DIR) / "sql" / "migrations";
  fs::copy_file(source / "000001_init.up.sql", installed / "000001_init.up.sql");
  fs::copy_file(source / "000001_init.down.sql", installed / "000001_init.down.sql");
  auto run = [&](std::vector<std::string> args) {
    test_support::child_process p((prefix / "bin" / "walletctl").string(), std::move(args),
                                  {{"DATABASE_URL", schema.url()}}, test_support::new_log_path("walletctl"));
    const auto code = p.wait(std::chrono::seconds(30));
    return std::pair(code.value_or(-1), p.log());
  };

  const auto [code, out] = run({"migrate", "status"});
  INFO(out);
  CHECK(code == 0);
  CHECK_THAT(out, Catch::Contains("000001") && Catch::Contains("pending"));
  CHECK_THAT(out, !Catch::Contains("000002"));

  // --migrations DIR wins over the installed folder: the source tree's full set.
  const auto [flag_code, flag_out] = run({"migrate", "--migrations", source.string(), "status"});
  INFO(flag_out);
  CHECK(flag_code == 0);
  std::size_t available = 0;
  for (const auto& entry : fs::directory_iterator(source)) available += entry.path().string().ends_with(".up.sql");
  std::size_t listed = 0;
  for (std::size_t at = flag_out.find(" pending"); at != std::string::npos; at = flag_out.find(" pending", at + 1)) {
    ++listed;
  }
  CHECK(listed == available);

  // Neither a flag nor an installed folder nor a build directory: the error says what to do.
  fs::remove_all(prefix / "share");
  const auto [missing_code, missing_out] = run({"migrate", "status"});
  CHECK(missing_code == 1);
  CHECK_THAT(missing_out, Catch::Contains("no migrations folder found") && Catch::Contains("--migrations DIR"));
  fs::remove_all(prefix);
}
