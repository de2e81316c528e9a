#pragma once
// Keccak-256 as Ethereum uses it: the original Keccak submission padding (0x01), which is NOT
// the FIPS 202 SHA3-256 padding (0x06). keccak256("") = c5d24601...5d85a470.
//
// Thread-safety: pure functions, safe to call concurrently.

#include <array>
#include <cstdint>
#include <span>
#include <string_view>

namespace chain {

using hash256 = std::array<std::uint8_t, 32>;

[[nodiscard]] hash256 keccak256(std::span<const std::uint8_t> data);

// Hashes the characters of `text` (no terminator), e.g. for EIP-55 and function selectors.
[[nodiscard]] hash256 keccak256(std::string_view text);

}  // namespace chain
