#include "broadcaster/db_poll_source.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace broadcaster {
namespace {

constexpr const char* loop_name = "source";

class db_poll_source final : public event_source {
 public:
  db_poll_source(const settings& config, processor& worker, health& status, common::process_signals& signals)
      : config_(config), worker_(worker), health_(status), signals_(signals) {}

  std::string describe() const override {
    return fmt::format("Source: DB poll every {}", common::format_duration(config_.poll_interval));
  }

  // The database was checked by the worker already; nothing else to wait for.
  std::string check_ready(std::chrono::milliseconds) override { return {}; }

  void run() override {
    while (!signals_.stop_requested()) {
      health_.beat(loop_name);
      const auto result = worker_.process_next_pending();
      if (!result) {
        wait_alive(signals_, health_, loop_name, config_.poll_interval);
        continue;
      }
      if (result->what == outcome::interrupted) break;
      if (result->what == outcome::dead_letter) {
        // No queue to dead-letter to: the withdrawal was failed and refunded (or, after an internal
        // error, left as it is for an operator); pause so a broken row cannot spin the loop.
        spdlog::error("db-poll: withdrawal {} not processed: {}",
                      result->withdrawal_id ? std::to_string(*result->withdrawal_id) : "?", result->reason);
        wait_alive(signals_, health_, loop_name, config_.poll_interval);
      }
    }
    health_.beat(loop_name);
  }

 private:
  const settings& config_;
  processor& worker_;
  health& health_;
  common::process_signals& signals_;
};

}  // namespace

std::unique_ptr<event_source> make_db_poll_source(const settings& config, processor& worker, health& status,
                                                  common::process_signals& signals) {
  return std::make_unique<db_poll_source>(config, worker, status, signals);
}

}  // namespace broadcaster
