#pragma once
// Redis Streams publisher: one pipelined XADD per row, each reply that row's acknowledgement.
//   XADD <topic> [MAXLEN ~ <stream_max_len>] * outbox-id <id> key <key or ""> payload <bytes> headers <json>
// The connection is opened lazily and dropped after any I/O error (the next call reconnects).

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "common/redis.hpp"
#include "relay/config.hpp"
#include "relay/publisher.hpp"

namespace relay {

/// What an error reply means for the row: `failed` for conditions of the server that pass
/// (OOM, LOADING, BUSY, MASTERDOWN, READONLY, TRYAGAIN, CLUSTERDOWN), `blocked` for refusals of
/// the whole stream until an operator acts (NOPERM, NOAUTH, WRONGTYPE: the stream key holds
/// another type), `rejected` for anything else (ERR: the command was refused for this entry).
delivery_status classify_redis_error(const std::string& error_reply);

/// Why an entry Redis acknowledged might not survive a Redis crash (no AOF, appendfsync other than
/// always, settings unreadable); nullopt when it does. One CONFIG GET per setting on `redis`.
std::optional<std::string> redis_durability_warning(common::redis::connection& redis);

class redis_publisher final : public publisher {
 public:
  /// Throws common::config_error when config.redis.url is not a redis:// URL.
  explicit redis_publisher(const relay_config& config);
  ~redis_publisher() override;

  std::string_view mode() const noexcept override { return "Redis Stream"; }
  void send(std::span<const outbox_row> rows, std::chrono::steady_clock::time_point deadline,
            const std::function<bool()>& keep_waiting) override;
  std::vector<delivery_result> collect(std::chrono::steady_clock::time_point deadline,
                                       const std::function<bool()>& keep_waiting) override;
  bool reachable(std::chrono::milliseconds timeout) override;
  std::optional<std::string> connectivity_problem() override;
  std::size_t close(std::chrono::milliseconds timeout) override;

 private:
  common::redis::connection& connect();

  common::redis::endpoint endpoint_;
  std::int64_t stream_max_len_;
  std::chrono::milliseconds io_timeout_;
  std::optional<common::redis::connection> connection_;
  bool durability_checked_ = false;  // the startup warning is logged once
  // The batch between send() and collect().
  std::size_t sent_ = 0;
  std::vector<delivery_result> results_;
  std::optional<std::string> failed_from_;  // send() lost the connection: every row failed
};

}  // namespace relay
