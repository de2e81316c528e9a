#pragma once
// The 256-bit unsigned integer of the EVM (balances, wei amounts, gas prices) and its
// conversions to fixed-width big-endian bytes.
//
// uint256 arithmetic wraps modulo 2^256 silently (Boost's "unchecked" backend): validate
// external input with chain::parse_units, which detects overflow, before doing arithmetic.

#include <array>
#include <cstdint>
#include <span>

#include <boost/multiprecision/cpp_int.hpp>

namespace chain {

using uint256 = boost::multiprecision::uint256_t;

// 32 bytes, most significant first, zero-padded on the left.
[[nodiscard]] std::array<std::uint8_t, 32> to_big_endian(const uint256& value);

// Reads up to 32 big-endian bytes (an empty span is 0).
// Throws std::invalid_argument if `data` is longer than 32 bytes.
[[nodiscard]] uint256 from_big_endian(std::span<const std::uint8_t> data);

}  // namespace chain
