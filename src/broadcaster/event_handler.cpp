#include "broadcaster/event_handler.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace broadcaster {
namespace {

// The event to process, or the result that ends it here (bad, or another chain's).
struct routed {
  std::optional<events::withdrawal_created> event;
  process_result result;
};

routed route(processor& worker, metrics& counters, const inbound_event& event) {
  counters.events_consumed.Increment();
  if (const auto type = event.headers.find(std::string(events::event_type_header));
      type != event.headers.end() && type->second != events::withdrawal_created_type) {
    spdlog::warn("{}: unsupported event-type \"{}\"", event.origin, type->second);
    return {std::nullopt,
            {outcome::dead_letter,
             std::nullopt,
             fmt::format("unsupported event-type \"{}\": expected {}", type->second, events::withdrawal_created_type),
             {}}};
  }
  const events::parsed_event parsed = events::parse_withdrawal_event(event.payload);
  if (parsed.withdrawal_id) spdlog::info("收到提现事件 id={}", *parsed.withdrawal_id);
  if (!parsed.event) {
    spdlog::warn("{}: malformed WithdrawalCreated event: {}", event.origin, parsed.error);
    const std::string reason = fmt::format("malformed event: {}", parsed.error);
    if (parsed.withdrawal_id) return {std::nullopt, worker.reject_withdrawal(*parsed.withdrawal_id, reason)};
    return {std::nullopt, {outcome::dead_letter, std::nullopt, reason, {}}};
  }
  if (parsed.event->chain != worker.chain_name()) {
    // One worker per chain, all on one topic: the worker of that chain pays it.
    counters.skipped(skip_reason::other_chain);
    spdlog::info("{}: withdrawal {} is on chain \"{}\", this worker pays \"{}\": skipped", event.origin,
                 parsed.event->withdrawal_id, parsed.event->chain, worker.chain_name());
    return {std::nullopt, {outcome::skipped, parsed.event->withdrawal_id, "other chain", {}}};
  }
  spdlog::debug("{}: withdrawal {} for user {}: {} {} to {}", event.origin, parsed.event->withdrawal_id,
                parsed.event->user_id, parsed.event->amount, parsed.event->chain, parsed.event->to_address);
  return {parsed.event, {}};
}

}  // namespace

process_result handle_event(processor& worker, metrics& counters, const inbound_event& event) {
  const routed r = route(worker, counters, event);
  return r.event ? worker.process_withdrawal(r.event->withdrawal_id, &*r.event) : r.result;
}

std::vector<process_result> handle_events(processor& worker, metrics& counters,
                                          const std::vector<inbound_event>& events) {
  std::vector<routed> routes;
  routes.reserve(events.size());
  std::vector<const events::withdrawal_created*> batch;
  for (const auto& event : events) routes.push_back(route(worker, counters, event));
  for (const auto& r : routes) {
    if (r.event) batch.push_back(&*r.event);
  }
  auto done = worker.broadcast_batch(batch);
  std::vector<process_result> results;
  results.reserve(events.size());
  for (const auto& r : routes) {
    if (!r.event) {
      results.push_back(r.result);
    } else if (auto it = done.find(r.event->withdrawal_id); it != done.end()) {
      results.push_back(std::move(it->second));
      done.erase(it);  // the same event again in this run is a duplicate, as the ordinary path says
    } else {
      results.push_back(worker.process_withdrawal(r.event->withdrawal_id, &*r.event));
    }
    if (!acknowledge(results.back())) break;
  }
  return results;
}

}  // namespace broadcaster
