#include <catch2/catch.hpp>

#include "common/redis.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;

TEST_CASE("redis: url parsing", "[redis]") {
  const auto e = common::redis::parse_url("redis://127.0.0.1:56379/2");
  CHECK(e.host == "127.0.0.1");
  CHECK(e.port == 56379);
  CHECK(e.database == 2);
  CHECK_THROWS_AS(common::redis::parse_url("http://x"), std::invalid_argument);
  CHECK_THROWS_AS(common::redis::parse_url("redis://h:99999"), std::invalid_argument);
}

TEST_CASE("redis: binary-safe stream round trip with pipelining", "[redis]") {
  common::redis::connection redis(common::redis::parse_url(test_support::require_env("REDIS_URL")), 5s);
  const auto stream = test_support::unique_name("stream");
  const std::string binary("a\0b\r\n", 5);
  redis.append({"XADD", stream, "*", "payload", binary});
  redis.append({"XADD", stream, "*", "payload", "second"});
  CHECK(redis.read_reply().type == common::redis::reply::kind::string);
  CHECK(redis.read_reply().type == common::redis::reply::kind::string);
  const auto range = redis.command({"XRANGE", stream, "-", "+"});
  REQUIRE(range.elements.size() == 2);
  CHECK(range.elements[0].elements[1].elements[1].text == binary);
  CHECK(redis.command({"NOSUCHCOMMAND"}).is_error());
  redis.command({"DEL", stream});
}
