#pragma once
// A small blocking HTTP/1.1 client (Boost.Beast underneath, kept out of this header): the
// broadcaster's JSON-RPC transport and the integration suites' client of the daemons.
//
// Every request is bounded by one deadline, `timeout` from its start: resolve + connect + write +
// read. One keep-alive connection is reused; a connection the server closed (or asked to close)
// is reopened on the next request. A request is sent once, unless the caller opts into
// client_options::resend_on_stale_connection for idempotent requests.
//
// Errors: transport_error for a failed resolve/connect/write/read or a passed deadline (the
// connection is dropped; the next request opens a fresh one). Any HTTP status is an answer, not
// an error: the caller judges it.
// Thread-safety: none; give each thread its own client. Not movable (it owns its I/O context).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace common::http {

struct client_options {
  /// Sent as User-Agent when not empty.
  std::string user_agent;
  /// A larger answer body is a transport_error.
  std::size_t body_limit = 64 * 1024 * 1024;
  /// When a reused keep-alive connection fails before the answer (the server closed it while it
  /// was idle), send the request once more on a fresh connection, within the same deadline.
  /// Only for idempotent requests: the first copy may have been processed.
  bool resend_on_stale_connection = false;
  /// Whether error messages show the request target. Turn off when the target holds a secret
  /// (node providers put API keys in the path).
  bool target_in_errors = true;
};

struct client_response {
  unsigned status = 0;
  std::string reason;                          // "OK", "Service Unavailable", ...
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;

  /// The header's value or an empty string.
  std::string header(const std::string& lower_case_name) const;
};

/// The request got no answer: resolve, connect, write or read failed, or the deadline passed.
/// what(): "http <METHOD> <origin>[<target>]: <reason>". Retrying later may help.
class transport_error : public std::runtime_error {
 public:
  transport_error(const std::string& request, std::string reason, bool timed_out);
  /// The step and the cause without the request, e.g. "connect failed: Connection refused" or
  /// "read timed out (deadline 300 ms)".
  const std::string& reason() const noexcept { return reason_; }
  /// True when the deadline passed (as opposed to a refused or broken connection).
  bool timed_out() const noexcept { return timed_out_; }

 private:
  std::string reason_;
  bool timed_out_;
};

class client {
 public:
  /// `host` is a name or an address (127.0.0.1, ::1, node.internal). Connects lazily, on the
  /// first request. Each request must complete within `timeout`.
  client(std::string host, std::uint16_t port, std::chrono::milliseconds timeout = std::chrono::seconds(30),
         client_options options = {});
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  /// Sends one request and reads the answer, within the deadline. Throws transport_error.
  client_response request(std::string_view method, std::string_view target, std::string body = {},
                          const std::map<std::string, std::string>& headers = {});

  client_response get(std::string_view target, const std::map<std::string, std::string>& headers = {});
  /// POST with Content-Type: application/json unless `headers` names another one.
  client_response post_json(std::string_view target, std::string body, std::map<std::string, std::string> headers = {});

  /// "http://host:port", as error messages name the server.
  std::string origin() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace common::http
