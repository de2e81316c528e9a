#pragma once
// Recursive Length Prefix encoding (Ethereum Yellow Paper, appendix B), the serialization of
// transactions. Encoding only: this service builds transactions, it never parses foreign ones.
//
// Thread-safety: pure functions, safe to call concurrently.

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string_view>

#include "chain/hex.hpp"
#include "chain/uint256.hpp"

namespace chain::rlp {

// A byte string item: a single byte below 0x80 is its own encoding; otherwise a length prefix
// (0x80 + length, or 0xb7 + length-of-length for 56 bytes and more) followed by the bytes.
[[nodiscard]] bytes encode_bytes(std::span<const std::uint8_t> payload);

// The characters of `text` as a byte string item ("dog" -> 0x83646f67).
[[nodiscard]] bytes encode_string(std::string_view text);

// An unsigned integer: its minimal big-endian bytes as a byte string, so 0 is the empty
// string (0x80) and leading zero bytes never appear (1024 -> 0x820400).
[[nodiscard]] bytes encode_uint(std::uint64_t value);
[[nodiscard]] bytes encode_uint(const uint256& value);

// A list of items that are each ALREADY RLP-encoded (outputs of the functions above or of
// encode_list itself); their concatenation is prefixed with 0xc0 + length (or 0xf7 + ...).
[[nodiscard]] bytes encode_list(std::span<const bytes> encoded_items);
[[nodiscard]] bytes encode_list(std::initializer_list<bytes> encoded_items);

}  // namespace chain::rlp
