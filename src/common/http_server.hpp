#pragma once
// A small HTTP/1.1 server (Boost.Beast) shared by the daemons: the wallet's JSON API and the
// /metrics + /healthz endpoints of every daemon.
//
// Handlers run synchronously on one of the server's `threads` I/O threads and may block
// (e.g. on a database call): size `threads` to the concurrency you want. Handlers must be
// thread-safe. Keep-alive connections are closed after `idle_timeout`; a request must arrive
// completely within `request_timeout`; bodies over `body_limit` are answered 413 without
// calling the handler.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/config.hpp"

namespace common::http {

struct request {
  std::string method;                          // "GET", "POST", ...
  std::string target;                          // path and query, as sent
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;

  /// The header's value or an empty string.
  const std::string& header(const std::string& lower_case_name) const;
  /// The target without its query string.
  std::string path() const;
};

struct response {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

/// {"error": {"code": code, "message": message}} with `status`: the error shape of every route.
response error_response(unsigned status, std::string_view code, std::string_view message);

using handler = std::function<response(const request&)>;

struct server_config {
  std::string bind_address = "127.0.0.1";
  std::uint16_t port = 0;  // 0: an ephemeral port, see server::port()
  std::size_t body_limit = 64 * 1024;
  std::chrono::milliseconds request_timeout{std::chrono::seconds(10)};
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(60)};
  std::size_t threads = 2;
};

/// The [http] section every daemon shares: http.listen (an IP address; default 127.0.0.1) and
/// http.port (0 picks a free port, logged); the other fields keep their defaults.
/// Throws config_error naming the key.
server_config parse_server_config(config_reader& reader, std::uint16_t default_port);
/// A listen address key (http.listen, grpc.listen): an IP address such as 127.0.0.1 or ::1.
std::string parse_listen_address(config_reader& reader, std::string_view key, std::string_view fallback);

class server {
 public:
  server(server_config config, handler on_request);
  ~server();  // stops and joins
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// Binds and starts the I/O threads, logging "listening on http://<address>:<port>".
  /// Throws std::system_error naming the address when bind fails.
  void start();
  /// Graceful stop: closes the listener, lets requests whose handler already runs finish and
  /// send their answer (with "Connection: close"), closes idle keep-alive connections, then
  /// stop()s. Blocks up to `timeout`; connections still busy then are cut. Returns true when
  /// every connection finished in time. Call from a thread that is not one of the server's.
  bool drain(std::chrono::milliseconds timeout);
  /// Stops accepting, closes connections and joins the threads. Idempotent.
  void stop() noexcept;
  /// The bound port (useful with port 0).
  std::uint16_t port() const noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace common::http
