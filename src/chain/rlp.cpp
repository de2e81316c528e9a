#include "chain/rlp.hpp"

#include <algorithm>

namespace chain::rlp {
namespace {

constexpr std::uint8_t string_offset = 0x80;
constexpr std::uint8_t list_offset = 0xc0;
// Payloads up to 55 bytes carry their length in the prefix byte itself.
constexpr std::size_t short_limit = 55;

bytes minimal_big_endian(std::uint64_t value) {
  bytes out;
  while (value != 0) {
    out.insert(out.begin(), static_cast<std::uint8_t>(value & 0xFFU));
    value >>= 8U;
  }
  return out;
}

void append_header(bytes& out, std::size_t payload_size, std::uint8_t offset) {
  if (payload_size <= short_limit) {
    out.push_back(static_cast<std::uint8_t>(offset + payload_size));
    return;
  }
  const bytes length = minimal_big_endian(payload_size);
  // offset + 55 + length-of-length: 0xb8..0xbf for strings, 0xf8..0xff for lists.
  out.push_back(static_cast<std::uint8_t>(offset + short_limit + length.size()));
  out.insert(out.end(), length.begin(), length.end());
}

template <typename Items>
bytes encode_list_of(const Items& encoded_items) {
  std::size_t payload_size = 0;
  for (const bytes& item : encoded_items) payload_size += item.size();
  bytes out;
  out.reserve(payload_size + 9);
  append_header(out, payload_size, list_offset);
  for (const bytes& item : encoded_items) out.insert(out.end(), item.begin(), item.end());
  return out;
}

}  // namespace

bytes encode_bytes(std::span<const std::uint8_t> payload) {
  if (payload.size() == 1 && payload[0] < string_offset) {
    return bytes{payload[0]};
  }
  bytes out;
  out.reserve(payload.size() + 9);
  append_header(out, payload.size(), string_offset);
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

bytes encode_string(std::string_view text) {
  // Reading chars as unsigned bytes is always allowed.
  return encode_bytes(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
}

bytes encode_uint(std::uint64_t value) { return encode_bytes(minimal_big_endian(value)); }

bytes encode_uint(const uint256& value) {
  const auto full = to_big_endian(value);
  const auto first = std::find_if(full.begin(), full.end(), [](std::uint8_t b) { return b != 0; });
  return encode_bytes(std::span<const std::uint8_t>(first, full.end()));
}

bytes encode_list(std::span<const bytes> encoded_items) { return encode_list_of(encoded_items); }

bytes encode_list(std::initializer_list<bytes> encoded_items) { return encode_list_of(encoded_items); }

}  // namespace chain::rlp
