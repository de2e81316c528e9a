#include "relay/redis_publisher.hpp"

#include <array>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace relay {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

delivery_status classify_redis_error(const std::string& error_reply) {
  static constexpr std::array<std::string_view, 7> passing = {"OOM",      "LOADING",  "BUSY",       "MASTERDOWN",
                                                              "READONLY", "TRYAGAIN", "CLUSTERDOWN"};
  const std::string_view prefix = std::string_view(error_reply).substr(0, error_reply.find(' '));
  for (const auto p : passing) {
    if (prefix == p) return delivery_status::failed;
  }
  // The stream (our topic) refuses every entry until an operator acts: an ACL, or a key of
  // another type under the stream's name. No row's fault.
  static constexpr std::array<std::string_view, 3> stream_wide = {"NOPERM", "NOAUTH", "WRONGTYPE"};
  for (const auto p : stream_wide) {
    if (prefix == p) return delivery_status::blocked;
  }
  return delivery_status::rejected;
}

namespace {
std::string reason_of(const std::string& error_reply) {
  std::string prefix = error_reply.substr(0, error_reply.find(' '));
  for (auto& c : prefix) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return prefix.empty() ? "error" : prefix;
}
}  // namespace

redis_publisher::redis_publisher(const relay_config& config)
    : stream_max_len_(config.redis.stream_max_len),
      io_timeout_(std::min<std::chrono::milliseconds>(config.outbox.delivery_timeout, 5s)) {
  try {
    endpoint_ = common::redis::parse_url(config.redis.url);
  } catch (const std::invalid_argument& e) {
    throw common::config_error("redis.url", fmt::format("redis.url: {}", e.what()));
  }
}

redis_publisher::~redis_publisher() = default;

common::redis::connection& redis_publisher::connect() {
  if (!connection_) connection_.emplace(endpoint_, io_timeout_);
  return *connection_;
}

void redis_publisher::send(std::span<const outbox_row> rows, clock_type::time_point, const std::function<bool()>&) {
  sent_ = rows.size();
  results_.assign(rows.size(), {});
  failed_from_.reset();
  try {
    auto& redis = connect();
    std::vector<std::string> argv;
    for (const auto& row : rows) {
      argv.clear();
      argv.insert(argv.end(), {"XADD", row.topic});
      if (stream_max_len_ > 0) argv.insert(argv.end(), {"MAXLEN", "~", std::to_string(stream_max_len_)});
      argv.insert(argv.end(), {"*", "outbox-id", std::to_string(row.id), "key", row.key.value_or(""), "payload",
                               row.payload, "headers", row.headers});
      redis.append(argv);
    }
    redis.flush();  // Redis works on the batch while the caller does
  } catch (const common::redis::connection_error& e) {
    failed_from_ = e.what();
  }
}

std::vector<delivery_result> redis_publisher::collect(clock_type::time_point deadline,
                                                      const std::function<bool()>& keep_waiting) {
  auto fail_from = [&](std::size_t first, const std::string& error) {
    for (std::size_t i = first; i < sent_; ++i)
      results_[i] = {delivery_status::failed, error, "connection", clock_type::now()};
    connection_.reset();  // unread replies or a broken socket: never reuse it
  };
  if (failed_from_) {
    fail_from(0, *failed_from_);
    return std::exchange(results_, {});
  }
  std::size_t i = 0;
  try {
    for (; i < sent_; ++i) {
      if (clock_type::now() >= deadline || !keep_waiting()) {
        fail_from(i, "no reply from Redis before the batch deadline");
        break;
      }
      const auto reply = connection_->read_reply();
      if (reply.is_error()) {
        results_[i] = {classify_redis_error(reply.text), "redis: " + reply.text, reason_of(reply.text),
                       clock_type::now()};
      } else {
        results_[i] = {delivery_status::persisted, {}, {}, clock_type::now()};
      }
    }
  } catch (const common::redis::connection_error& e) {
    fail_from(i, e.what());
  }
  return std::exchange(results_, {});
}

std::optional<std::string> redis_durability_warning(common::redis::connection& redis) {
  auto setting = [&](const std::string& name) -> std::optional<std::string> {
    const auto reply = redis.command({"CONFIG", "GET", name});
    if (reply.is_error() || reply.elements.size() < 2) return std::nullopt;
    return reply.elements[1].text;
  };
  const auto appendonly = setting("appendonly");
  const auto appendfsync = setting("appendfsync");
  if (!appendonly || !appendfsync) {
    return "cannot read Redis' persistence settings (CONFIG GET refused): the relay cannot tell whether an "
           "acknowledged XADD survives a Redis crash; rows are deleted on acknowledgement (README: Redis Streams "
           "durability)";
  }
  if (*appendonly != "yes") {
    return "Redis runs without AOF (appendonly " + *appendonly +
           "): a Redis crash or restart loses acknowledged stream entries whose rows the relay already deleted; set "
           "appendonly yes and appendfsync always (README: Redis Streams durability)";
  }
  if (*appendfsync != "always") {
    return "Redis fsyncs its AOF with appendfsync " + *appendfsync +
           ": a Redis crash loses up to about a second of acknowledged stream entries whose rows the relay already "
           "deleted; set appendfsync always (README: Redis Streams durability)";
  }
  return std::nullopt;
}

bool redis_publisher::reachable(std::chrono::milliseconds timeout) {
  try {
    if (!connection_) connection_.emplace(endpoint_, std::min(timeout, io_timeout_));
    const auto reply = connection_->command({"PING"});
    if (!reply.is_error() && !durability_checked_) {
      durability_checked_ = true;
      if (const auto warning = redis_durability_warning(*connection_)) spdlog::warn("{}", *warning);
    }
    if (!reply.is_error()) return true;
    spdlog::debug("redis PING: {}", reply.text);
  } catch (const common::redis::connection_error& e) {
    spdlog::debug("redis PING: {}", e.what());
    connection_.reset();
  }
  return false;
}

// Failures surface through collect() results: hiredis has no background connection to watch.
std::optional<std::string> redis_publisher::connectivity_problem() { return std::nullopt; }

std::size_t redis_publisher::close(std::chrono::milliseconds) {
  connection_.reset();  // every XADD was answered inside collect(): nothing is queued here
  return 0;
}

}  // namespace relay
