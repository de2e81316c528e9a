#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "common/config.hpp"
#include "common/database.hpp"
#include "common/http_server.hpp"
#include "common/kafka.hpp"
#include "common/redis.hpp"

using namespace std::chrono_literals;

namespace {

// An environment the test controls, instead of the process's.
common::env_lookup fake_env(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

template <class Call>
void expect_error(Call&& call, const std::string& key, const std::string& fragment) {
  try {
    call();
    FAIL("no config_error thrown");
  } catch (const common::config_error& e) {
    CHECK(e.key() == key);
    CHECK_THAT(e.what(), Catch::Contains(key) && Catch::Contains(fragment));
  }
}

const char* sample = R"(
[log]
level = "debug"
[outbox]
batch_size = 100
poll_interval = "2s"
[mq]
type = "kafka"
[kafka.properties]
"linger.ms" = 5
"compression.type" = "zstd"
)";

}  // namespace

TEST_CASE("config: values come from the file, then the prefixed variable, then aliases", "[config]") {
  SECTION("the file's value when no variable is set") {
    auto reader = common::config_reader::from_string(sample, "RELAY", fake_env({}));
    CHECK(reader.get_int("outbox.batch_size", 500, 1, 10000) == 100);
    CHECK(reader.get_duration("outbox.poll_interval", 1s, 10ms, 1h) == 2s);
    CHECK(reader.get_string("log.level", "info") == "debug");
  }
  SECTION("the environment wins over the file") {
    auto reader = common::config_reader::from_string(
        sample, "RELAY", fake_env({{"RELAY_OUTBOX_BATCH_SIZE", "250"}, {"RELAY_OUTBOX_POLL_INTERVAL", "250ms"}}));
    CHECK(reader.get_int("outbox.batch_size", 500, 1, 10000) == 250);
    CHECK(reader.get_duration("outbox.poll_interval", 1s, 10ms, 1h) == 250ms);
  }
  SECTION("the seed's REDIS_MQ_TYPE switch is an alias of mq.type; the prefixed name still wins") {
    auto alias_only = common::config_reader::from_string(sample, "RELAY", fake_env({{"REDIS_MQ_TYPE", "redis"}}));
    CHECK(alias_only.get_choice("mq.type", "kafka", {"kafka", "redis"}, {"REDIS_MQ_TYPE"}) == "redis");
    auto both = common::config_reader::from_string(sample, "RELAY",
                                                   fake_env({{"REDIS_MQ_TYPE", "redis"}, {"RELAY_MQ_TYPE", "kafka"}}));
    CHECK(both.get_choice("mq.type", "kafka", {"kafka", "redis"}, {"REDIS_MQ_TYPE"}) == "kafka");
  }
  SECTION("defaults apply to absent keys") {
    auto reader = common::config_reader::from_string("", "RELAY", fake_env({}));
    CHECK(reader.get_int("outbox.batch_size", 500, 1, 10000) == 500);
    CHECK(reader.get_bool("api.enable_deposits", false) == false);
  }
}

TEST_CASE("config: a bad value names the key and the fix", "[config]") {
  auto reader = common::config_reader::from_string(
      "[outbox]\nbatch_size = 0\nname = 3\n[mq]\ntype = \"rabbit\"\n", "RELAY",
      fake_env({{"RELAY_OUTBOX_POLL_INTERVAL", "soon"}, {"RELAY_LOG_LEVEL_NUMBER", "x"}}));
  expect_error([&] { reader.get_int("outbox.batch_size", 500, 1, 10000); }, "outbox.batch_size", "1..10000");
  expect_error([&] { reader.get_string("outbox.name", ""); }, "outbox.name", "a string");
  expect_error([&] { reader.get_choice("mq.type", "kafka", {"kafka", "redis"}); }, "mq.type", "\"kafka\", \"redis\"");
  expect_error([&] { reader.get_duration("outbox.poll_interval", 1s, 10ms, 1h); }, "RELAY_OUTBOX_POLL_INTERVAL",
               "ms, s, m or h");
}

TEST_CASE("config: unknown keys are rejected by name, pass-through tables are not", "[config]") {
  auto reader = common::config_reader::from_string(sample, "RELAY", fake_env({}));
  reader.get_string("log.level", "info");
  reader.get_int("outbox.batch_size", 500, 1, 10000);
  reader.get_choice("mq.type", "kafka", {"kafka", "redis"});
  const auto properties = reader.get_properties("kafka.properties");
  CHECK(properties.at("linger.ms") == "5");
  CHECK(properties.at("compression.type") == "zstd");
  try {
    reader.reject_unknown_keys();
    FAIL("outbox.poll_interval was never read, so it is unknown");
  } catch (const common::config_error& e) {
    CHECK(e.key() == "outbox.poll_interval");
  }
  reader.get_duration("outbox.poll_interval", 1s, 10ms, 1h);
  CHECK_NOTHROW(reader.reject_unknown_keys());
}

TEST_CASE("config: a TOML syntax error reports line and column", "[config]") {
  try {
    common::config_reader::from_string("[outbox]\nbatch_size = = 3\n", "RELAY", fake_env({}));
    FAIL("no error");
  } catch (const common::config_error& e) {
    CHECK_THAT(e.what(), Catch::Contains("line 2"));
  }
}

TEST_CASE("config: durations", "[config]") {
  CHECK(common::parse_duration("250ms") == 250ms);
  CHECK(common::parse_duration("5s") == 5s);
  CHECK(common::parse_duration("2m") == 2min);
  CHECK(common::parse_duration("1h") == 1h);
  CHECK_THROWS_AS(common::parse_duration("5"), std::invalid_argument);
  CHECK_THROWS_AS(common::parse_duration("-1s"), std::invalid_argument);
  CHECK_THROWS_AS(common::parse_duration("1.5s"), std::invalid_argument);
  CHECK_THROWS_AS(common::parse_duration("s"), std::invalid_argument);
}

TEST_CASE("config: secrets come from the variable, a _FILE, or the systemd credential directory", "[config]") {
  const auto dir = std::filesystem::temp_directory_path() / ("secret_test_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "database-password") << "from-credential\n";
  std::ofstream(dir / "pw-file") << "from-file\n";
  CHECK(common::read_secret("database-password", "DATABASE_PASSWORD", fake_env({{"DATABASE_PASSWORD", "from-env"}}))
            .reveal() == "from-env");
  CHECK(common::read_secret("database-password", "DATABASE_PASSWORD",
                            fake_env({{"DATABASE_PASSWORD_FILE", (dir / "pw-file").string()}}))
            .reveal() == "from-file");
  CHECK(
      common::read_secret("database-password", "DATABASE_PASSWORD", fake_env({{"CREDENTIALS_DIRECTORY", dir.string()}}))
          .reveal() == "from-credential");
  CHECK(common::read_secret("database-password", "DATABASE_PASSWORD", fake_env({})).empty());
  CHECK_THROWS_AS(common::read_secret("database-password", "DATABASE_PASSWORD",
                                      fake_env({{"DATABASE_PASSWORD_FILE", (dir / "missing").string()}})),
                  common::config_error);
  std::filesystem::remove_all(dir);
}

TEST_CASE("database: the password reaches libpq but never the logs", "[config]") {
  common::database_config config;
  config.url = "postgresql://outbox@127.0.0.1:55432/outbox";
  config.password = common::secret("p@ss word");
  config.application_name = "relay";
  const auto dsn = common::connection_string(config);
  CHECK_THAT(dsn, Catch::Contains("password=p%40ss%20word"));
  CHECK_THAT(dsn, Catch::Contains("application_name=relay"));
  CHECK(common::redacted_url("postgresql://u:secret@h/db") == "postgresql://u:***@h/db");
  CHECK(common::redacted_url(dsn).find("p%40ss") == std::string::npos);
}

TEST_CASE("kafka: a property librdkafka rejects names kafka.properties.<name>", "[config]") {
  common::kafka::kafka_config config;
  config.properties = {{"linger.ms", "not-a-number"}};
  try {
    common::kafka::make_conf(config, {});
    FAIL("no error");
  } catch (const common::config_error& e) {
    CHECK(e.key() == "kafka.properties.linger.ms");
  }
  config.properties = {{"no.such.property", "1"}};
  CHECK_THROWS_AS(common::kafka::make_conf(config, {}), common::config_error);
}

TEST_CASE("config: durations print in their shortest exact unit", "[config]") {
  CHECK(common::format_duration(5s) == "5s");
  CHECK(common::format_duration(250ms) == "250ms");
  CHECK(common::format_duration(1500ms) == "1500ms");
  CHECK(common::format_duration(2min) == "2m");
  CHECK(common::format_duration(1h) == "1h");
  CHECK(common::format_duration(0ms) == "0s");
}

TEST_CASE("config: the shared sections read the same way in every daemon", "[config]") {
  SECTION("mq.type and its REDIS_MQ_TYPE alias") {
    auto plain = common::config_reader::from_string("", "RELAY", fake_env({}));
    CHECK(common::parse_mq_type(plain) == common::mq_type::kafka);
    auto alias = common::config_reader::from_string("", "BROADCASTER", fake_env({{"REDIS_MQ_TYPE", "redis"}}));
    CHECK(common::parse_mq_type(alias) == common::mq_type::redis);
    CHECK(common::to_string(common::mq_type::redis) == "redis");
  }
  SECTION("[http]: an IP address and a port; 0 picks a free port") {
    auto reader = common::config_reader::from_string("[http]\nlisten = \"::1\"\nport = 0\n", "WALLET", fake_env({}));
    const auto http = common::http::parse_server_config(reader, 8080);
    CHECK(http.bind_address == "::1");
    CHECK(http.port == 0);
    auto defaults = common::config_reader::from_string("", "RELAY", fake_env({{"RELAY_HTTP_PORT", "9300"}}));
    CHECK(common::http::parse_server_config(defaults, 9101).port == 9300);
    auto hostname = common::config_reader::from_string("[http]\nlisten = \"localhost\"\n", "RELAY", fake_env({}));
    expect_error([&] { common::http::parse_server_config(hostname, 9101); }, "http.listen", "IP address");
  }
  SECTION("[redis] url: Redis' own port by default, checked only when mq.type is redis") {
    auto defaults = common::config_reader::from_string("", "RELAY", fake_env({}));
    CHECK(common::redis::parse_url_config(defaults, common::mq_type::redis) == "redis://127.0.0.1:6379");
    auto bad = common::config_reader::from_string("[redis]\nurl = \"http://x\"\n", "RELAY", fake_env({}));
    CHECK(common::redis::parse_url_config(bad, common::mq_type::kafka) == "http://x");
    auto bad_used = common::config_reader::from_string("[redis]\nurl = \"http://x\"\n", "RELAY", fake_env({}));
    expect_error([&] { common::redis::parse_url_config(bad_used, common::mq_type::redis); }, "redis.url", "redis://");
  }
}
