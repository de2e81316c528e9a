#include "chain/uint256.hpp"

#include <stdexcept>

namespace chain {

std::array<std::uint8_t, 32> to_big_endian(const uint256& value) {
  std::array<std::uint8_t, 32> out{};
  uint256 rest = value;
  for (auto it = out.rbegin(); it != out.rend(); ++it) {
    *it = static_cast<std::uint8_t>(rest & 0xFFU);
    rest >>= 8;
  }
  return out;
}

uint256 from_big_endian(std::span<const std::uint8_t> data) {
  if (data.size() > 32) {
    throw std::invalid_argument("a uint256 holds at most 32 bytes, got " + std::to_string(data.size()));
  }
  uint256 value = 0;
  for (const std::uint8_t byte : data) {
    value = (value << 8) | byte;
  }
  return value;
}

}  // namespace chain
