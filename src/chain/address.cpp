#include "chain/address.hpp"

#include <algorithm>
#include <stdexcept>

#include <secp256k1.h>

#include "chain/hex.hpp"
#include "chain/keccak.hpp"

namespace chain {
namespace {

bool is_hex_digit(char c) noexcept {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

char to_upper_ascii(char c) noexcept { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c; }

void set_error(std::string* error, std::string_view field, std::string_view message) {
  if (error != nullptr) {
    *error = std::string(field);
    *error += message;
  }
}

}  // namespace

std::optional<address> address::parse(std::string_view text, std::string* error, std::string_view field) {
  constexpr std::size_t digit_count = 2 * size;
  // Only a lower-case "0x": EIP-55 and every wallet print it that way, and accepting "0X"
  // would be one more spelling for downstream deduplication to get wrong.
  if (text.size() != 2 + digit_count || text[0] != '0' || text[1] != 'x' ||
      !std::all_of(text.begin() + 2, text.end(), is_hex_digit)) {
    set_error(error, field, " must be 0x followed by 40 hex digits");
    return std::nullopt;
  }
  const std::string_view digits = text.substr(2);

  storage raw{};
  from_hex(digits, raw);
  const address parsed(raw);

  const bool has_lower = std::any_of(digits.begin(), digits.end(), [](char c) { return c >= 'a' && c <= 'f'; });
  const bool has_upper = std::any_of(digits.begin(), digits.end(), [](char c) { return c >= 'A' && c <= 'F'; });
  if (has_lower && has_upper && parsed.to_checksum_string() != text) {
    // Deliberately not showing the expected spelling: that would invite "fixing" a mistyped
    // address by copying our suggestion, defeating the checksum.
    set_error(error, field, " has an EIP-55 checksum mismatch; copy the address again from its source");
    return std::nullopt;
  }
  return parsed;
}

address address::from_public_key(std::span<const std::uint8_t> public_key) {
  std::array<std::uint8_t, 65> uncompressed{};
  if (public_key.size() == 65 && public_key[0] == 0x04) {
    std::copy(public_key.begin(), public_key.end(), uncompressed.begin());
  } else if (public_key.size() == 64) {
    uncompressed[0] = 0x04;
    std::copy(public_key.begin(), public_key.end(), uncompressed.begin() + 1);
  } else {
    throw std::invalid_argument("public key must be 65 bytes starting with 0x04 or 64 bytes X||Y, got " +
                                std::to_string(public_key.size()) + " bytes");
  }
  // Hashing garbage would still give a plausible-looking address; refuse points off the curve.
  secp256k1_pubkey parsed{};
  if (secp256k1_ec_pubkey_parse(secp256k1_context_static, &parsed, uncompressed.data(), uncompressed.size()) != 1) {
    throw std::invalid_argument("public key is not a valid secp256k1 point");
  }
  const hash256 digest = keccak256(std::span<const std::uint8_t>(uncompressed).subspan(1));
  storage raw{};
  std::copy(digest.end() - static_cast<std::ptrdiff_t>(size), digest.end(), raw.begin());
  return address(raw);
}

std::string address::to_checksum_string() const {
  std::string lower = to_hex(raw_, false);
  const hash256 digest = keccak256(std::string_view(lower));
  std::string out = "0x";
  out.reserve(2 + lower.size());
  for (std::size_t i = 0; i < lower.size(); ++i) {
    // EIP-55: upper-case the i-th hex letter when the i-th nibble of keccak(lower hex) >= 8.
    const unsigned nibble = (i % 2 == 0) ? (digest[i / 2] >> 4U) : (digest[i / 2] & 0x0FU);
    out += nibble >= 8 ? to_upper_ascii(lower[i]) : lower[i];
  }
  return out;
}

std::string address::to_lower_hex() const { return to_hex(raw_, true); }

bool address::is_zero() const noexcept {
  return std::all_of(raw_.begin(), raw_.end(), [](std::uint8_t b) { return b == 0; });
}

}  // namespace chain
