#pragma once
// A small blocking HTTP/1.1 client for the integration suites (Boost.Beast underneath, kept out
// of this header): one keep-alive connection per client, every call bounded by `timeout`.
// Not thread-safe: give each thread its own client.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "test_support.hpp"

namespace test_support {

struct http_response {
  unsigned status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;

  /// The header's value or an empty string.
  std::string header(const std::string& lower_case_name) const;
};

class http_client {
 public:
  /// Connects lazily, on the first request. `host` is an address such as 127.0.0.1.
  http_client(std::string host, std::uint16_t port, std::chrono::milliseconds timeout = std::chrono::seconds(30));
  ~http_client();
  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  /// Sends one request and reads the answer. A connection the server closed (or asked to close)
  /// is reopened for the next call; a request is never re-sent. Throws std::runtime_error on
  /// connect, I/O or timeout failures, naming the method and target.
  http_response request(std::string_view method, std::string_view target, std::string body = {},
                        const std::map<std::string, std::string>& headers = {});

  http_response get(std::string_view target, const std::map<std::string, std::string>& headers = {});
  /// POST with Content-Type: application/json unless `headers` names another one.
  http_response post_json(std::string_view target, std::string body, std::map<std::string, std::string> headers = {});

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Waits until the daemon logged "listening on <scheme>://<address>:<port>" (scheme "http",
/// "grpc") and returns the port. Throws std::runtime_error with the log when it does not within
/// `timeout` or the process exits.
std::uint16_t wait_for_port(child_process& daemon, std::string_view scheme,
                            std::chrono::milliseconds timeout = std::chrono::seconds(30));

/// Waits until the daemon logged "listening on http://<address>:<port>" and returns the port.
/// Throws std::runtime_error with the log when it does not within `timeout` or the process exits.
std::uint16_t wait_for_http_port(child_process& daemon, std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace test_support
