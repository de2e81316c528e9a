#pragma once
// Validation of what clients send: JSON bodies, path ids, Idempotency-Key and traceparent
// headers. Pure functions, no I/O, safe to call concurrently.
//
// Every rejection is an api_error: the HTTP status, a stable machine-readable code and a
// message for a human that names the field and the fix.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "wallet/config.hpp"

namespace wallet {

struct api_error {
  unsigned status = 400;
  std::string code;     // invalid_json, missing_field, unknown_field, invalid_type, invalid_amount, ...
  std::string message;  // names the field and the fix
};

/// A value of T, or why the input was refused.
template <class T>
using parsed = std::variant<T, api_error>;

/// A withdrawal's fields as a transport delivered them (JSON body, protobuf message), after the
/// transport's own checks (presence, JSON types) and before the shared validation.
struct withdrawal_fields {
  std::int64_t user_id = 0;
  std::string to_address;
  std::string amount;  // the decimal text as sent
  std::string chain;
};

/// A validated withdrawal: what validate_withdrawal() makes of withdrawal_fields.
struct withdrawal_request {
  std::int64_t user_id = 0;  // > 0
  std::string to_address;    // as the client sent it (checked: 0x + 40 hex, EIP-55 if mixed-case, not zero)
  std::string amount;        // canonical decimal: chain::format_units of the parsed value ("1.25")
  std::string chain;         // a configured chain name
};

/// The JSON part of a POST /v1/withdrawals body: exactly {"user_id", "to_address", "amount",
/// "chain"}, no duplicates, user_id an integer, the others strings (amount a decimal STRING, never
/// a JSON number).
parsed<withdrawal_fields> parse_withdrawal_json(std::string_view body);

/// The validation every transport shares: user_id > 0, a configured chain, a valid non-zero
/// address, amount a decimal within the chain's decimals and maximum, greater than zero.
parsed<withdrawal_request> validate_withdrawal(const withdrawal_fields& fields, const chain_map& chains);

/// parse_withdrawal_json() then validate_withdrawal().
parsed<withdrawal_request> parse_withdrawal_request(std::string_view body, const chain_map& chains);

/// The JSON part of a deposit body: exactly {"amount": "<decimal string>"}; returns the text.
parsed<std::string> parse_deposit_json(std::string_view body);

/// A deposit amount: decimal, at most 18 decimals, greater than zero; returns the canonical form.
parsed<std::string> validate_deposit_amount(std::string_view amount);

/// parse_deposit_json() then validate_deposit_amount().
parsed<std::string> parse_deposit_request(std::string_view body);

/// Hex SHA-256 of a deposit's canonical form, for the Idempotency-Key check of deposits.
std::string deposit_digest(std::int64_t user_id, const std::string& canonical_amount);

/// Hex SHA-256 of the canonical form of `request`; two requests with the same digest are the
/// same withdrawal for the Idempotency-Key check.
std::string request_digest(const withdrawal_request& request);

/// Checks an Idempotency-Key header value: 1..255 visible ASCII characters.
std::optional<api_error> check_idempotency_key(std::string_view key);

/// A W3C trace-context traceparent header ("00-<32 hex>-<16 hex>-<2 hex>") when valid,
/// nullopt otherwise (an invalid one is dropped, as the W3C spec asks, not refused).
std::optional<std::string> valid_traceparent(std::string_view header);

/// True for Content-Type "application/json", with optional parameters (charset=utf-8).
bool is_json_content_type(std::string_view content_type);

/// A positive bigint path segment ("42"), nullopt for anything else.
std::optional<std::int64_t> parse_positive_id(std::string_view segment);

/// The canonical decimal of a numeric(78, 18) text as PostgreSQL prints it ("1.250000000000000000"
/// -> "1.25"). Throws std::invalid_argument on text that is not such a number.
std::string canonical_decimal(std::string_view numeric_text);

}  // namespace wallet
