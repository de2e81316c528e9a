#pragma once
// The WithdrawalCreated event as wallet-service writes it to the outbox:
//   {"withdrawal_id": <number>, "user_id": <number>, "to_address": "<string>",
//    "amount": "<decimal string ETH>", "chain": "eth"}
// Pure parsing and comparison; thread-safe.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace broadcaster {

inline constexpr std::string_view withdrawal_created_type = "WithdrawalCreated";

struct withdrawal_event {
  std::int64_t withdrawal_id = 0;
  std::int64_t user_id = 0;
  std::string to_address;
  std::string amount;  // decimal ETH, exactly as sent
  std::string chain;
};

struct parsed_event {
  /// Set when the payload is valid.
  std::optional<withdrawal_event> event;
  /// Set whenever a positive integer withdrawal_id could be read, even if other fields are bad:
  /// a bad event for an existing withdrawal still fails (and refunds) that withdrawal.
  std::optional<std::int64_t> withdrawal_id;
  /// Why the payload is not a valid event (empty when valid), naming the field.
  std::string error;
};

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
std::string describe_mismatch(const withdrawal_event& event, const withdrawal_facts& row);

}  // namespace broadcaster
