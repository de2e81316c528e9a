#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "common/http_client.hpp"
#include "common/http_server.hpp"
#include "test_support.hpp"

using namespace std::chrono_literals;

namespace {

// An in-process server that echoes what it got; a request to /slow answers after 1.5 s.
struct echo_server {
  explicit echo_server(std::chrono::milliseconds idle_timeout = 60s)
      : server({"127.0.0.1", 0, 64 * 1024, 10s, idle_timeout, 2}, [this](const common::http::request& r) {
          ++requests;
          if (r.path() == "/slow") std::this_thread::sleep_for(1500ms);
          common::http::response out{200, "text/plain", r.method + " " + r.target + " " + r.body, {}};
          out.headers.emplace_back("X-Content-Type-Seen", r.header("content-type"));
          out.headers.emplace_back("X-User-Agent-Seen", r.header("user-agent"));
          return out;
        }) {
    server.start();
  }
  std::atomic<int> requests{0};
  common::http::server server;
};

}  // namespace

TEST_CASE("http client: requests, answers with lower-cased headers, keep-alive reuse", "[http]") {
  echo_server echo;
  common::http::client_options options;
  options.user_agent = "outbox-test";
  common::http::client client("127.0.0.1", echo.server.port(), 2s, options);
  CHECK(client.origin() == "http://127.0.0.1:" + std::to_string(echo.server.port()));

  const auto got = client.get("/a?b=1");
  CHECK(got.status == 200);
  CHECK(got.reason == "OK");
  CHECK(got.body == "GET /a?b=1 ");
  CHECK(got.header("x-user-agent-seen") == "outbox-test");
  CHECK(got.header("no-such-header").empty());

  const auto posted = client.post_json("/json", R"({"x":1})");
  CHECK(posted.body == R"(POST /json {"x":1})");
  CHECK(posted.header("x-content-type-seen") == "application/json");
  CHECK(client.post_json("/json", "a=1", {{"content-type", "text/plain"}}).header("x-content-type-seen") ==
        "text/plain");
  CHECK(client.request("PATCH", "/p", "z").body == "PATCH /p z");
  CHECK(echo.requests == 4);
}

TEST_CASE("http client: a refused connection and a passed deadline are transport errors", "[http]") {
  SECTION("refused") {
    common::http::client client("127.0.0.1", test_support::free_loopback_port(), 2s);
    try {
      static_cast<void>(client.get("/x"));
      FAIL("no error");
    } catch (const common::http::transport_error& e) {
      CHECK_FALSE(e.timed_out());
      CHECK_THAT(std::string(e.what()),
                 Catch::StartsWith("http GET http://127.0.0.1:") && Catch::Contains("/x: connect failed"));
      CHECK_THAT(e.reason(), Catch::StartsWith("connect failed: "));
    }
  }
  SECTION("slower than the deadline, then recovered on a fresh connection") {
    echo_server echo;
    common::http::client client("127.0.0.1", echo.server.port(), 300ms);
    try {
      static_cast<void>(client.get("/slow"));
      FAIL("no error");
    } catch (const common::http::transport_error& e) {
      CHECK(e.timed_out());
      CHECK(e.reason() == "read timed out (deadline 300 ms)");
    }
    CHECK(client.get("/fast").body == "GET /fast ");
  }
  SECTION("a target holding a secret stays out of the message") {
    common::http::client_options options;
    options.target_in_errors = false;
    common::http::client client("127.0.0.1", test_support::free_loopback_port(), 2s, options);
    CHECK_THROWS_WITH(client.get("/v3/secret-key"), !Catch::Contains("secret-key"));
  }
}

TEST_CASE("http client: an idle connection the server closed is replaced for idempotent requests", "[http]") {
  echo_server echo(100ms);
  common::http::client_options options;
  options.resend_on_stale_connection = true;
  common::http::client client("127.0.0.1", echo.server.port(), 2s, options);
  CHECK(client.get("/one").status == 200);
  std::this_thread::sleep_for(500ms);  // past the server's idle timeout: it closes the connection
  CHECK(client.get("/two").body == "GET /two ");
}
