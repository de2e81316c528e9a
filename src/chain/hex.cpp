#include "chain/hex.hpp"

#include <stdexcept>

namespace chain {
namespace {

constexpr std::string_view hex_digits = "0123456789abcdef";

int nibble_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string_view strip_prefix(std::string_view text) noexcept {
  if (text.size() >= 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    text.remove_prefix(2);
  }
  return text;
}

// Precondition: digits.size() == 2 * out.size().
void decode_digits(std::string_view digits, std::span<std::uint8_t> out) {
  for (std::size_t i = 0; i < out.size(); ++i) {
    const int high = nibble_value(digits[2 * i]);
    const int low = nibble_value(digits[2 * i + 1]);
    if (high < 0 || low < 0) {
      throw std::invalid_argument("hex string contains a character that is not a hex digit");
    }
    out[i] = static_cast<std::uint8_t>((high << 4) | low);
  }
}

}  // namespace

std::string to_hex(std::span<const std::uint8_t> data, bool prefix) {
  std::string out;
  out.reserve(data.size() * 2 + (prefix ? 2 : 0));
  if (prefix) out += "0x";
  for (const std::uint8_t byte : data) {
    out += hex_digits[byte >> 4U];
    out += hex_digits[byte & 0x0FU];
  }
  return out;
}

bytes from_hex(std::string_view text) {
  const std::string_view digits = strip_prefix(text);
  if (digits.size() % 2 != 0) {
    throw std::invalid_argument("hex string has an odd number of digits");
  }
  bytes out(digits.size() / 2);
  decode_digits(digits, out);
  return out;
}

void from_hex(std::string_view text, std::span<std::uint8_t> out) {
  const std::string_view digits = strip_prefix(text);
  if (digits.size() % 2 != 0) {
    throw std::invalid_argument("hex string has an odd number of digits");
  }
  if (digits.size() != out.size() * 2) {
    throw std::invalid_argument("hex string must encode exactly " + std::to_string(out.size()) + " bytes (" +
                                std::to_string(out.size() * 2) + " hex digits), got " + std::to_string(digits.size()) +
                                " digits");
  }
  decode_digits(digits, out);
}

}  // namespace chain
