#pragma once
// The WithdrawalCreated event: the one definition of its contract, used by wallet-service (which
// writes it to the outbox in the withdrawal's transaction) and broadcaster-worker (which parses it).
//   topic   wallet_events_withdrawal
//   key     the user id (decimal): one user's events stay in order
//   headers event-type = WithdrawalCreated, event-id (UUID), created-at (RFC 3339 UTC),
//           traceparent (optional); the relay adds outbox-id
//   payload {"withdrawal_id": <number>, "user_id": <number>, "to_address": "<string>",
//            "amount": "<decimal string>", "chain": "<chain name>"}
// The event is a pointer: the withdrawal row is the source of truth, and an event disagreeing
// with it is refused. Pure functions; thread-safe.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace events {

inline constexpr std::string_view withdrawal_topic = "wallet_events_withdrawal";
inline constexpr std::string_view withdrawal_created_type = "WithdrawalCreated";
inline constexpr std::string_view event_type_header = "event-type";
inline constexpr std::string_view event_id_header = "event-id";
inline constexpr std::string_view created_at_header = "created-at";
inline constexpr std::string_view traceparent_header = "traceparent";

struct withdrawal_created {
  std::int64_t withdrawal_id = 0;
  std::int64_t user_id = 0;
  std::string to_address;
  std::string amount;  // decimal ETH, exactly as sent
  std::string chain;
};

struct parsed_event {
  /// Set when the payload is valid.
  std::optional<withdrawal_created> event;
  /// Set whenever a positive integer withdrawal_id could be read, even if other fields are bad:
  /// a bad event for an existing withdrawal still fails (and refunds) that withdrawal.
  std::optional<std::int64_t> withdrawal_id;
  /// Why the payload is not a valid event (empty when valid), naming the field.
  std::string error;
};

/// The JSON payload, fields in the contract's order.
std::string to_payload(const withdrawal_created& event);
/// The outbox row's key: the user id.
std::string event_key(const withdrawal_created& event);
/// The headers the writer sets, as a JSON object text (event-id is left to the database).
std::string event_headers_json(std::string_view created_at, const std::optional<std::string>& traceparent);

/// Parses the JSON payload. Never throws for bad input. Unknown extra fields are allowed.
parsed_event parse_withdrawal_event(std::string_view payload);

/// The withdrawal as stored, for comparison with its event.
struct withdrawal_facts {
  std::int64_t user_id = 0;
  std::string to_address;
  std::string amount;  // numeric(78,18) as text, e.g. "1.500000000000000000"
  std::string chain;
};

/// Empty when the event agrees with the row; otherwise which field disagrees and how.
/// Amounts compare as numbers (exact, 18 decimals); addresses compare as addresses
/// (case-insensitive when both are valid), otherwise as text.
std::string describe_mismatch(const withdrawal_created& event, const withdrawal_facts& row);

}  // namespace events
