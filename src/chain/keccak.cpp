#include "chain/keccak.hpp"

#include <crypto++/keccak.h>

namespace chain {

hash256 keccak256(std::span<const std::uint8_t> data) {
  // Keccak_256, not SHA3_256: Ethereum fixed its hash before FIPS 202 changed the padding.
  CryptoPP::Keccak_256 hasher;
  hasher.Update(data.data(), data.size());
  hash256 digest{};
  hasher.Final(digest.data());
  return digest;
}

hash256 keccak256(std::string_view text) {
  CryptoPP::Keccak_256 hasher;
  // Crypto++ takes bytes; reading a char buffer as unsigned bytes is always allowed.
  hasher.Update(reinterpret_cast<const CryptoPP::byte*>(text.data()), text.size());
  hash256 digest{};
  hasher.Final(digest.data());
  return digest;
}

}  // namespace chain
