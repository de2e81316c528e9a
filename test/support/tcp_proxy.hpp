#pragma once
// A TCP forwarder for outage tests: a daemon connects to 127.0.0.1:port() instead of a shared
// service, and the test cuts that path (every forwarded connection closed, new ones closed as
// soon as they are accepted) and restores it, while the shared service itself keeps running for
// everyone else.
//
// Thread-safety: every member may be called from any thread; forwarding runs on a thread of its
// own. cut() and restore() return once the forwarder has applied them.

#include <cstdint>
#include <memory>
#include <string>

namespace test_support {

class tcp_proxy {
 public:
  /// Listens on 127.0.0.1 (ephemeral port) and forwards to `target_host`:`target_port`.
  tcp_proxy(std::string target_host, std::uint16_t target_port);
  ~tcp_proxy();  // closes everything and joins the thread
  tcp_proxy(const tcp_proxy&) = delete;
  tcp_proxy& operator=(const tcp_proxy&) = delete;

  std::uint16_t port() const noexcept;
  /// Closes every forwarded connection; until restore(), new connections are closed at once.
  void cut();
  void restore();
  /// Arms a trip wire: the next chunk a client sends that contains `needle` is still forwarded
  /// to the server, then that one connection is closed (others are untouched) before any answer
  /// comes back. With needle "COMMIT" this makes a commit whose outcome the client cannot know.
  /// A needle split across two reads is not seen; PostgreSQL's short messages arrive whole.
  void drop_after_client_sends(std::string needle);
  /// How many connections the trip wire has closed.
  int trips() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// `url` (postgresql://user@host:port/db?...) with host:port replaced by 127.0.0.1:`port`.
std::string url_via_port(const std::string& url, std::uint16_t port);
/// The host and port of a postgresql:// URL.
std::pair<std::string, std::uint16_t> url_host_port(const std::string& url);

}  // namespace test_support
