#include "chain/units.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>

namespace chain {
namespace {

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

parse_units_result fail(units_error error, std::string message) {
  parse_units_result result;
  result.error = error;
  result.message = std::move(message);
  return result;
}

void check_decimals(unsigned decimals) {
  if (decimals > max_decimals) {
    throw std::invalid_argument("decimals must be 0.." + std::to_string(max_decimals) + ", got " +
                                std::to_string(decimals));
  }
}

// value = value * 10 + digit, or false if that would reach 2^256 (uint256 wraps silently).
bool append_digit(uint256& value, unsigned digit) {
  static const uint256 uint256_max = std::numeric_limits<uint256>::max();
  if (value > (uint256_max - digit) / 10) return false;
  value = value * 10 + digit;
  return true;
}

}  // namespace

parse_units_result parse_units(std::string_view decimal, unsigned decimals, const std::optional<uint256>& maximum) {
  check_decimals(decimals);
  if (decimal.empty()) {
    return fail(units_error::empty, "amount must not be empty");
  }
  // Checked over the whole string first so " 1" reports the space, not a bad first character.
  if (std::any_of(decimal.begin(), decimal.end(), is_space)) {
    return fail(units_error::whitespace, "amount must not contain spaces or other whitespace");
  }
  if (decimal.front() == '+' || decimal.front() == '-') {
    return fail(units_error::sign, "amount must be written without a sign, e.g. 1.25");
  }
  std::size_t point = std::string_view::npos;
  for (std::size_t i = 0; i < decimal.size(); ++i) {
    const char c = decimal[i];
    if (is_digit(c)) continue;
    if (c == '.') {
      if (point != std::string_view::npos) {
        return fail(units_error::misplaced_decimal_point, "amount must contain at most one '.'");
      }
      point = i;
      continue;
    }
    if (c == 'e' || c == 'E') {
      return fail(units_error::exponent, "amount must be written out in full, without an exponent such as 1e18");
    }
    if (c == ',') {
      return fail(units_error::invalid_character,
                  "amount must not contain ','; use digits with '.' as the decimal point, e.g. 1.25");
    }
    return fail(units_error::invalid_character,
                "amount must be a plain decimal number such as 1.25 (digits and at most one '.')");
  }

  std::string_view whole = decimal;
  std::string_view fraction;
  if (point != std::string_view::npos) {
    whole = decimal.substr(0, point);
    fraction = decimal.substr(point + 1);
    if (whole.empty()) {
      return fail(units_error::misplaced_decimal_point, "amount must have a digit before '.', e.g. 0.5");
    }
    if (fraction.empty()) {
      return fail(units_error::misplaced_decimal_point,
                  "amount must have a digit after '.', or no '.' at all, e.g. 5 or 5.0");
    }
  }
  if (fraction.size() > decimals) {
    // Even trailing zeros count: silently dropping digits is how amounts get misread.
    return fail(units_error::over_precise, "amount has " + std::to_string(fraction.size()) +
                                               " digits after '.', but this asset has only " +
                                               std::to_string(decimals) + " decimals");
  }

  const auto too_large = [] { return fail(units_error::overflow, "amount is too large (at least 2^256 base units)"); };
  uint256 value = 0;
  for (const char c : whole) {
    if (!append_digit(value, static_cast<unsigned>(c - '0'))) return too_large();
  }
  for (const char c : fraction) {
    if (!append_digit(value, static_cast<unsigned>(c - '0'))) return too_large();
  }
  for (std::size_t i = fraction.size(); i < decimals && value != 0; ++i) {
    if (!append_digit(value, 0)) return too_large();
  }

  if (maximum && value > *maximum) {
    return fail(units_error::above_maximum, "amount exceeds the maximum of " + format_units(*maximum, decimals));
  }
  parse_units_result result;
  result.value = value;
  return result;
}

std::string format_units(const uint256& value, unsigned decimals) {
  check_decimals(decimals);
  std::string digits = value.str();
  if (decimals == 0) return digits;
  if (digits.size() <= decimals) {
    digits.insert(0, decimals - digits.size() + 1, '0');
  }
  const std::size_t point = digits.size() - decimals;
  std::string_view fraction = std::string_view(digits).substr(point);
  while (!fraction.empty() && fraction.back() == '0') fraction.remove_suffix(1);

  std::string out = digits.substr(0, point);
  if (!fraction.empty()) {
    out += '.';
    out += fraction;
  }
  return out;
}

}  // namespace chain
