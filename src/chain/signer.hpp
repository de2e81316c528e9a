#pragma once
// A secp256k1 private key that signs Ethereum transaction hashes.
//
// Secrecy: the key bytes live in one heap allocation that is wiped when the key is destroyed.
// The type is move-only and deliberately has no operator<<, fmt formatter, to_string or byte
// accessor, so it cannot end up in a log line by accident.
//
// Thread-safety: const member functions may be called concurrently from any number of threads
// (the shared libsecp256k1 context is only read after its one-time creation).

#include <array>
#include <cstdint>
#include <memory>
#include <string_view>

#include "chain/address.hpp"
#include "chain/keccak.hpp"

namespace chain {

// An ECDSA signature (r, s) with the recovery id that lets verifiers recover the public key.
// s is always in the lower half of the curve order (EIP-2 / libsecp256k1 "low-S").
struct recoverable_signature {
  std::array<std::uint8_t, 32> r{};  // big-endian
  std::array<std::uint8_t, 32> s{};  // big-endian
  std::uint8_t recovery_id = 0;      // 0 or 1: the parity of the nonce point's y coordinate
};

class private_key {
 public:
  // Parses 64 hex digits, with or without "0x". Throws std::invalid_argument if the text is
  // not 32 bytes of hex or the number is not a valid secret key (0 or >= the curve order);
  // the message never contains the text. The caller still owns, and should wipe, `hex`.
  explicit private_key(std::string_view hex);

  private_key(private_key&& other) noexcept;
  private_key& operator=(private_key&& other) noexcept;
  private_key(const private_key&) = delete;
  private_key& operator=(const private_key&) = delete;
  ~private_key();

  // The account this key controls. Computed once at construction; cheap.
  // Throws std::logic_error on a moved-from key (as does sign_hash).
  [[nodiscard]] chain::address address() const;

  // Signs a 32-byte digest (e.g. a transaction signing hash) with a deterministic RFC 6979
  // nonce: the same key and digest always give the same signature. CPU-bound (tens of
  // microseconds), never blocks.
  // Throws std::runtime_error in the cryptographically negligible case that libsecp256k1
  // fails or returns a recovery id Ethereum cannot express.
  [[nodiscard]] recoverable_signature sign_hash(const hash256& digest) const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;

  const impl& checked_impl() const;
};

}  // namespace chain
