#include "broadcaster/redis_source.hpp"

#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "broadcaster/event_handler.hpp"
#include "common/backoff.hpp"
#include "common/redis.hpp"

namespace broadcaster {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;
using common::redis::reply;

constexpr const char* loop_name = "source";
constexpr const char* batch = "16";
constexpr auto lag_interval = 5s;
constexpr int max_claim_rounds = 64;

const reply* field(const reply& flat, std::string_view name) {
  if (flat.type != reply::kind::array) return nullptr;
  for (std::size_t i = 0; i + 1 < flat.elements.size(); i += 2) {
    if (flat.elements[i].text == name) return &flat.elements[i + 1];
  }
  return nullptr;
}

class redis_source final : public event_source {
 public:
  redis_source(const settings& config, processor& worker, metrics& counters, health& status,
               common::process_signals& signals)
      : config_(config),
        worker_(worker),
        metrics_(counters),
        health_(status),
        signals_(signals),
        endpoint_(common::redis::parse_url(config.redis.url)),
        consumer_(config.redis.consumer.empty() ? default_consumer_name() : config.redis.consumer),
        stream_(config.consumer.topic),
        group_(config.consumer.group) {}

  std::string describe() const override { return "MQ Mode: Redis Stream Consumer"; }

  std::string check_ready(std::chrono::milliseconds timeout) override {
    try {
      connect(timeout);
      ensure_group();
      return {};
    } catch (const std::exception& e) {
      connection_.reset();
      return fmt::format("Redis {}: {}", config_.redis.url, e.what());
    }
  }

  void run() override {
    spdlog::info("consuming stream {} in group {} as consumer {} (claiming entries idle > {}; dead letters to {})",
                 stream_, group_, consumer_, common::format_duration(config_.redis.claim_idle),
                 config_.consumer.dlq_topic);
    common::backoff delay(config_.consumer.retry_backoff, config_.consumer.retry_backoff_max);
    const auto claim_interval = std::max<std::chrono::milliseconds>(config_.redis.claim_idle / 2, 1s);
    auto next_claim = clock::now();
    auto next_lag = clock::now();
    bool own_pending_done = false;
    while (!signals_.stop_requested()) {
      health_.beat(loop_name);
      try {
        if (!connection_) {
          connect(config_.redis.block + 5s);
          ensure_group();
          own_pending_done = false;
        }
        // Entries delivered to this consumer name before a crash or reconnect, never acknowledged.
        if (!own_pending_done) {
          if (!read_own_pending()) break;
          own_pending_done = true;
        }
        if (clock::now() >= next_claim) {
          if (!claim_abandoned()) break;
          next_claim = clock::now() + claim_interval;
        }
        if (clock::now() >= next_lag) {
          update_lag();
          next_lag = clock::now() + lag_interval;
        }
        const reply r = connection_->command({"XREADGROUP", "GROUP", group_, consumer_, "COUNT", batch, "BLOCK",
                                              std::to_string(config_.redis.block.count()), "STREAMS", stream_, ">"});
        if (r.is_error()) {
          if (r.text.rfind("NOGROUP", 0) == 0) {
            spdlog::warn("redis: group {} vanished from stream {}: creating it again", group_, stream_);
            ensure_group();
            continue;
          }
          throw std::runtime_error("XREADGROUP: " + r.text);
        }
        if (!process_read_reply(r)) break;
        delay.reset();
        health_.clear_problem("redis");
      } catch (const std::exception& e) {
        connection_.reset();
        health_.set_problem("redis", e.what());
        const auto wait = delay.next();
        spdlog::warn("redis {}: {}; reconnecting in {} ms", config_.redis.url, e.what(), wait.count());
        if (signals_.wait_for(wait)) break;
      }
    }
    health_.beat(loop_name);
    spdlog::info("redis: consumer {} stopped", consumer_);
  }

 private:
  void connect(std::chrono::milliseconds timeout) { connection_.emplace(endpoint_, timeout); }

  void ensure_group() {
    const reply r = connection_->command({"XGROUP", "CREATE", stream_, group_, "0", "MKSTREAM"});
    if (r.is_error() && r.text.rfind("BUSYGROUP", 0) != 0) throw std::runtime_error("XGROUP CREATE: " + r.text);
    if (!r.is_error()) spdlog::info("redis: created group {} on stream {}", group_, stream_);
  }

  // XREADGROUP reply: [[stream, [[id, [field, value, ...]], ...]]] or nil on timeout.
  static const reply* entries_of(const reply& r) {
    if (r.type != reply::kind::array || r.elements.empty()) return nullptr;
    const reply& stream = r.elements[0];
    if (stream.type != reply::kind::array || stream.elements.size() < 2) return nullptr;
    return &stream.elements[1];
  }

  bool process_read_reply(const reply& r) {
    const reply* entries = entries_of(r);
    if (entries == nullptr) return true;
    for (const reply& entry : entries->elements) {
      if (!process_entry(entry)) return false;
    }
    return true;
  }

  bool read_own_pending() {
    std::string after = "0";
    for (;;) {
      const reply r =
          connection_->command({"XREADGROUP", "GROUP", group_, consumer_, "COUNT", batch, "STREAMS", stream_, after});
      if (r.is_error()) throw std::runtime_error("XREADGROUP (own pending): " + r.text);
      const reply* entries = entries_of(r);
      if (entries == nullptr || entries->elements.empty()) return true;
      spdlog::info("redis: re-processing {} unacknowledged entr{} of consumer {}", entries->elements.size(),
                   entries->elements.size() == 1 ? "y" : "ies", consumer_);
      for (const reply& entry : entries->elements) {
        if (!process_entry(entry)) return false;
        after = entry.elements.empty() ? after : entry.elements[0].text;
      }
    }
  }

  bool claim_abandoned() {
    std::string cursor = "0-0";
    for (int round = 0; round < max_claim_rounds && !signals_.stop_requested(); ++round) {
      const reply r = connection_->command({"XAUTOCLAIM", stream_, group_, consumer_,
                                            std::to_string(config_.redis.claim_idle.count()), cursor, "COUNT", batch});
      if (r.is_error() || r.type != reply::kind::array || r.elements.size() < 2) {
        spdlog::warn("redis: XAUTOCLAIM failed: {}", r.is_error() ? r.text : "unexpected reply");
        return true;
      }
      cursor = r.elements[0].text;
      const reply& entries = r.elements[1];
      if (!entries.elements.empty()) {
        spdlog::warn("redis: claimed {} entr{} idle for more than {} (their consumer is gone)", entries.elements.size(),
                     entries.elements.size() == 1 ? "y" : "ies", common::format_duration(config_.redis.claim_idle));
      }
      for (const reply& entry : entries.elements) {
        if (!process_entry(entry)) return false;
      }
      if (cursor == "0-0") break;
    }
    prune_dead_consumers();
    return true;
  }

  void prune_dead_consumers() {
    const reply r = connection_->command({"XINFO", "CONSUMERS", stream_, group_});
    if (r.is_error() || r.type != reply::kind::array) return;
    const auto idle_limit = static_cast<long long>(config_.redis.claim_idle.count()) * 10;
    for (const reply& consumer : r.elements) {
      const reply* name = field(consumer, "name");
      const reply* pending = field(consumer, "pending");
      const reply* idle = field(consumer, "idle");
      if (name == nullptr || pending == nullptr || idle == nullptr || name->text == consumer_) continue;
      if (pending->integer == 0 && idle->integer > idle_limit) {
        connection_->command({"XGROUP", "DELCONSUMER", stream_, group_, name->text});
        spdlog::info("redis: removed consumer {} (nothing pending, idle {} ms)", name->text, idle->integer);
      }
    }
  }

  void update_lag() {
    const reply r = connection_->command({"XINFO", "GROUPS", stream_});
    if (r.is_error() || r.type != reply::kind::array) return;
    for (const reply& group : r.elements) {
      const reply* name = field(group, "name");
      if (name == nullptr || name->text != group_) continue;
      // "lag" exists from Redis 7 on and is nil when Redis cannot tell (after deletions).
      if (const reply* lag = field(group, "lag"); lag != nullptr && lag->type == reply::kind::integer) {
        metrics_.consumer_lag.Set(static_cast<double>(lag->integer));
      }
    }
  }

  // One entry [id, [field, value, ...]]; true when acknowledged, false to stop.
  bool process_entry(const reply& entry) {
    if (entry.type != reply::kind::array || entry.elements.empty()) return true;
    const std::string id = entry.elements[0].text;
    const std::string origin = fmt::format("{}/{}", stream_, id);
    if (entry.elements.size() < 2 || entry.elements[1].type != reply::kind::array) {
      // Deleted from the stream (XDEL/XTRIM) while pending: nothing left to process.
      spdlog::warn("redis: {} no longer exists in the stream: acknowledged", origin);
      ack(id);
      return true;
    }
    const reply& fields = entry.elements[1];
    inbound_event event;
    event.origin = origin;
    const reply* payload = field(fields, "payload");
    if (payload != nullptr) event.payload = payload->text;
    if (const reply* headers = field(fields, "headers"); headers != nullptr && !headers->text.empty()) {
      const auto parsed = nlohmann::json::parse(headers->text, nullptr, false);
      if (parsed.is_object()) {
        for (const auto& [name, value] : parsed.items()) {
          event.headers[name] = value.is_string() ? value.get<std::string>() : value.dump();
        }
      } else {
        spdlog::warn("redis: {}: headers field is not a JSON object; ignored", origin);
      }
    }
    const process_result result = handle_event(worker_, metrics_, event);
    if (!acknowledge(result)) return false;
    if (result.what == outcome::dead_letter) {
      dead_letter(id, fields, result.reason);
    } else {
      ack(id);
    }
    return true;
  }

  void ack(const std::string& id) {
    const reply r = connection_->command({"XACK", stream_, group_, id});
    if (r.is_error()) throw std::runtime_error("XACK: " + r.text);
  }

  // XADD to the DLQ stream and XACK atomically: a crash in between can neither lose the event
  // nor acknowledge it without its dead letter.
  void dead_letter(const std::string& id, const reply& fields, const std::string& reason) {
    std::vector<std::string> xadd = {"XADD", config_.consumer.dlq_topic, "*"};
    for (std::size_t i = 0; i + 1 < fields.elements.size(); i += 2) {
      xadd.push_back(fields.elements[i].text);
      xadd.push_back(fields.elements[i + 1].text);
    }
    xadd.insert(xadd.end(), {"error", reason, "original-stream", stream_, "original-id", id});
    connection_->append({"MULTI"});
    connection_->append(xadd);
    connection_->append({"XACK", stream_, group_, id});
    connection_->append({"EXEC"});
    std::string failure;
    for (int i = 0; i < 3; ++i) {
      const reply r = connection_->read_reply();
      if (r.is_error() && failure.empty()) failure = r.text;
    }
    const reply exec = connection_->read_reply();
    if (!failure.empty() || exec.type != reply::kind::array) {
      throw std::runtime_error(
          fmt::format("dead letter to {} failed: {}", config_.consumer.dlq_topic,
                      failure.empty() ? (exec.is_error() ? exec.text : "transaction aborted") : failure));
    }
    for (const reply& step : exec.elements) {
      if (step.is_error())
        throw std::runtime_error(fmt::format("dead letter to {} failed: {}", config_.consumer.dlq_topic, step.text));
    }
    metrics_.dead_letters.Increment();
    metrics_.failure(failure_reason::dead_letter);
    spdlog::warn("{} → {}: {}", fmt::format("{}/{}", stream_, id), config_.consumer.dlq_topic, reason);
  }

  const settings& config_;
  processor& worker_;
  metrics& metrics_;
  health& health_;
  common::process_signals& signals_;
  const common::redis::endpoint endpoint_;
  const std::string consumer_;
  const std::string stream_;
  const std::string group_;
  std::optional<common::redis::connection> connection_;
};

}  // namespace

std::unique_ptr<event_source> make_redis_source(const settings& config, processor& worker, metrics& counters,
                                                health& status, common::process_signals& signals) {
  return std::make_unique<redis_source>(config, worker, counters, status, signals);
}

}  // namespace broadcaster
