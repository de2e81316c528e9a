#pragma once
// An Ethereum account address: the last 20 bytes of keccak256(uncompressed public key).
//
// Thread-safety: a value type; const member functions are safe to call concurrently.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace chain {

class address {
 public:
  static constexpr std::size_t size = 20;
  using storage = std::array<std::uint8_t, size>;

  // The zero address 0x000...0. Valid syntax, but funds sent there are burnt: callers that
  // accept user input decide whether to reject it (see is_zero()).
  constexpr address() noexcept = default;
  constexpr explicit address(const storage& raw) noexcept : raw_(raw) {}

  // Parses "0x" + 40 hex digits. All-lower-case and all-upper-case digits are accepted as they
  // are; mixed case must match the EIP-55 checksum, so a mistyped checksummed address is caught.
  // On failure returns nullopt and, if `error` is not null, stores a one-line message for a
  // human that starts with `field` (e.g. "to_address must be 0x followed by 40 hex digits").
  // Never throws except std::bad_alloc.
  [[nodiscard]] static std::optional<address> parse(std::string_view text, std::string* error = nullptr,
                                                    std::string_view field = "address");

  // The address of a secp256k1 public key given uncompressed: 65 bytes starting with 0x04, or
  // the 64 bytes X||Y without the prefix. Throws std::invalid_argument if the bytes are not
  // a point on the curve.
  [[nodiscard]] static address from_public_key(std::span<const std::uint8_t> public_key);

  // "0x" + 40 hex digits with EIP-55 mixed-case checksum, e.g. 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed.
  [[nodiscard]] std::string to_checksum_string() const;

  // "0x" + 40 lower-case hex digits (the form JSON-RPC nodes return).
  [[nodiscard]] std::string to_lower_hex() const;

  [[nodiscard]] constexpr const storage& raw() const noexcept { return raw_; }
  [[nodiscard]] bool is_zero() const noexcept;

  friend constexpr bool operator==(const address&, const address&) noexcept = default;

 private:
  storage raw_{};
};

}  // namespace chain
