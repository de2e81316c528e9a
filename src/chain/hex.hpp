#pragma once
// Hexadecimal encoding of byte strings, as used in Ethereum JSON-RPC and configuration.
//
// Thread-safety: all functions are pure and may be called concurrently.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace chain {

using bytes = std::vector<std::uint8_t>;

// Lower-case hex, two digits per byte; "0x" in front unless `prefix` is false.
// An empty input gives "0x" (or "").
[[nodiscard]] std::string to_hex(std::span<const std::uint8_t> data, bool prefix = true);

// Decodes hex with an optional "0x"/"0X" prefix; digits may be upper or lower case.
// Throws std::invalid_argument on an odd number of digits or a non-hex character.
// Error messages never quote the input (it may be a secret).
[[nodiscard]] bytes from_hex(std::string_view text);

// Decodes into a caller-owned buffer, for fixed-size values and secrets that must not be copied
// into a temporary heap buffer. Throws std::invalid_argument as above, and also when the input
// does not decode to exactly out.size() bytes; `out` may then be partially written.
void from_hex(std::string_view text, std::span<std::uint8_t> out);

}  // namespace chain
