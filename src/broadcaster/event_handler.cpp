#include "broadcaster/event_handler.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace broadcaster {

process_result handle_event(processor& worker, metrics& counters, const inbound_event& event) {
  counters.events_consumed.Increment();
  if (const auto type = event.headers.find(std::string(events::event_type_header));
      type != event.headers.end() && type->second != events::withdrawal_created_type) {
    spdlog::warn("{}: unsupported event-type \"{}\"", event.origin, type->second);
    return {outcome::dead_letter,
            std::nullopt,
            fmt::format("unsupported event-type \"{}\": expected {}", type->second, events::withdrawal_created_type),
            {}};
  }
  const events::parsed_event parsed = events::parse_withdrawal_event(event.payload);
  if (parsed.withdrawal_id) spdlog::info("收到提现事件 id={}", *parsed.withdrawal_id);
  if (!parsed.event) {
    spdlog::warn("{}: malformed WithdrawalCreated event: {}", event.origin, parsed.error);
    const std::string reason = fmt::format("malformed event: {}", parsed.error);
    if (parsed.withdrawal_id) return worker.reject_withdrawal(*parsed.withdrawal_id, reason);
    return {outcome::dead_letter, std::nullopt, reason, {}};
  }
  if (parsed.event->chain != worker.chain_name()) {
    // One worker per chain, all on one topic: the worker of that chain pays it.
    counters.skipped(skip_reason::other_chain);
    spdlog::info("{}: withdrawal {} is on chain \"{}\", this worker pays \"{}\": skipped", event.origin,
                 parsed.event->withdrawal_id, parsed.event->chain, worker.chain_name());
    return {outcome::skipped, parsed.event->withdrawal_id, "other chain", {}};
  }
  spdlog::debug("{}: withdrawal {} for user {}: {} {} to {}", event.origin, parsed.event->withdrawal_id,
                parsed.event->user_id, parsed.event->amount, parsed.event->chain, parsed.event->to_address);
  return worker.process_withdrawal(parsed.event->withdrawal_id, &*parsed.event);
}

}  // namespace broadcaster
