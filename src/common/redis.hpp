#pragma once
// A small synchronous Redis client over hiredis: one connection, commands as argument vectors
// (binary-safe, never formatted into a command string), replies as a value tree.
// Not thread-safe: one connection per thread.

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/config.hpp"

struct redisContext;

namespace common::redis {

/// The connection failed or timed out; it is unusable afterwards (reconnect).
class connection_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct reply {
  enum class kind { nil, integer, string, status, error, array };
  kind type = kind::nil;
  long long integer = 0;
  std::string text;  // string, status and error replies
  std::vector<reply> elements;

  bool is_error() const noexcept { return type == kind::error; }
  bool is_nil() const noexcept { return type == kind::nil; }
};

struct endpoint {
  std::string host = "127.0.0.1";
  int port = 6379;
  int database = 0;
};

/// Parses redis://host[:port][/db]. Throws std::invalid_argument naming what is wrong.
endpoint parse_url(const std::string& url);

/// redis.url (alias REDIS_URL; default redis://127.0.0.1:6379, Redis' own port), checked with
/// parse_url() when `mq` is redis. Throws config_error naming the key.
std::string parse_url_config(config_reader& reader, mq_type mq);

class connection {
 public:
  /// Connects with `timeout` for the connect and for every later command.
  connection(const endpoint& where, std::chrono::milliseconds timeout);
  ~connection();
  connection(connection&&) noexcept;
  connection& operator=(connection&&) noexcept;

  /// Runs one command. Redis-level errors come back as reply::kind::error;
  /// I/O failures throw connection_error.
  reply command(const std::vector<std::string>& argv);

  /// Pipelining: queue commands, then read their replies in order.
  void append(const std::vector<std::string>& argv);
  /// Writes the appended commands to the socket now, without waiting for replies (read_reply()
  /// would write them first otherwise).
  void flush();
  reply read_reply();

 private:
  struct context_deleter {
    void operator()(redisContext* context) const noexcept;
  };
  std::unique_ptr<redisContext, context_deleter> context_;
};

}  // namespace common::redis
