#pragma once
// Exact conversion between human decimal amounts ("1.25" ETH) and integer base units (wei).
// Integer arithmetic only: no floating point anywhere on the money path.
//
// Thread-safety: pure functions, safe to call concurrently.

#include <optional>
#include <string>
#include <string_view>

#include "chain/uint256.hpp"

namespace chain {

// ETH is denominated in wei: 1 ETH = 10^18 wei.
inline constexpr unsigned eth_decimals = 18;

// Upper bound for `decimals` (ERC-20 stores decimals in a uint8).
inline constexpr unsigned max_decimals = 255;

enum class units_error {
  none,
  empty,                    // ""
  whitespace,               // " 1", "1 ", "1 000"
  sign,                     // "+1", "-1"
  exponent,                 // "1e18"
  invalid_character,        // "0x10", "1,5", "abc"
  misplaced_decimal_point,  // ".5", "5.", "1.2.3"
  over_precise,             // more fractional digits than the asset has decimals
  overflow,                 // value >= 2^256 base units
  above_maximum,            // value > the caller's maximum
};

struct parse_units_result {
  uint256 value = 0;  // base units; meaningful only when ok()
  units_error error = units_error::none;
  std::string message;  // one line for a human, starts with "amount"; empty when ok()

  [[nodiscard]] bool ok() const noexcept { return error == units_error::none; }
  explicit operator bool() const noexcept { return ok(); }
};

// Parses a plain non-negative decimal: digits, optionally '.' followed by at least one digit,
// e.g. "1", "0.5", "1.25", "007.10". With `decimals` = 18, "1.25" gives 1250000000000000000.
// Rejects everything listed in units_error (a string that is at once wrong in several ways
// reports one of them). Zero ("0", "0.000") is a valid result: whether a zero amount is
// allowed is the caller's decision. `maximum`, when given, is inclusive and in base units.
// Input errors are reported in the result, never thrown; throws std::invalid_argument only if
// `decimals` > max_decimals (a programming error).
[[nodiscard]] parse_units_result parse_units(std::string_view decimal, unsigned decimals,
                                             const std::optional<uint256>& maximum = std::nullopt);

// The canonical decimal for `value` base units: no exponent, no leading zeros except a single
// "0" before '.', no trailing zeros in the fraction, no '.' for whole numbers, "0" for zero.
// format_units(1250000000000000000, 18) == "1.25". parse_units(format_units(v, d), d) == v.
// Throws std::invalid_argument if `decimals` > max_decimals.
[[nodiscard]] std::string format_units(const uint256& value, unsigned decimals);

}  // namespace chain
