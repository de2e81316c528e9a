#include "chain/signer.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

#include <crypto++/misc.h>
#include <crypto++/osrng.h>
#include <secp256k1.h>
#include <secp256k1_recovery.h>

#include "chain/hex.hpp"

namespace chain {
namespace {

struct context_deleter {
  void operator()(secp256k1_context* context) const noexcept { secp256k1_context_destroy(context); }
};
using context_holder = std::unique_ptr<secp256k1_context, context_deleter>;

// One context for the process: creating one costs far more than a signature, and after
// creation and randomization libsecp256k1 only reads it, so concurrent signing is safe.
const secp256k1_context* signing_context() {
  static const context_holder context = [] {
    context_holder created(secp256k1_context_create(SECP256K1_CONTEXT_NONE));
    if (!created) throw std::runtime_error("secp256k1: cannot create a context");
    // Blinding against timing and power side channels; RFC 6979 nonces do not depend on it.
    std::array<std::uint8_t, 32> seed{};
    CryptoPP::OS_GenerateRandomBlock(false, seed.data(), seed.size());
    const int randomized = secp256k1_context_randomize(created.get(), seed.data());
    CryptoPP::SecureWipeArray(seed.data(), seed.size());
    if (randomized != 1) throw std::runtime_error("secp256k1: cannot randomize the context");
    return created;
  }();
  return context.get();
}

}  // namespace

struct private_key::impl {
  std::array<std::uint8_t, 32> secret{};
  chain::address account;

  impl() = default;
  impl(const impl&) = delete;
  impl& operator=(const impl&) = delete;
  ~impl() { CryptoPP::SecureWipeArray(secret.data(), secret.size()); }
};

private_key::private_key(std::string_view hex) : impl_(std::make_unique<impl>()) {
  const secp256k1_context* context = signing_context();
  try {
    from_hex(hex, impl_->secret);
  } catch (const std::invalid_argument&) {
    // Replaced rather than passed on: the hex decoder's message is about generic hex.
    throw std::invalid_argument("private key must be 64 hex digits, optionally prefixed by 0x");
  }
  if (secp256k1_ec_seckey_verify(context, impl_->secret.data()) != 1) {
    throw std::invalid_argument("private key is not a valid secp256k1 secret key (zero or not below the curve order)");
  }

  secp256k1_pubkey public_key{};
  if (secp256k1_ec_pubkey_create(context, &public_key, impl_->secret.data()) != 1) {
    throw std::runtime_error("secp256k1: cannot derive the public key");
  }
  std::array<std::uint8_t, 65> serialized{};
  std::size_t serialized_size = serialized.size();
  secp256k1_ec_pubkey_serialize(context, serialized.data(), &serialized_size, &public_key, SECP256K1_EC_UNCOMPRESSED);
  impl_->account = chain::address::from_public_key(serialized);
}

private_key::private_key(private_key&& other) noexcept = default;
private_key& private_key::operator=(private_key&& other) noexcept = default;
private_key::~private_key() = default;

const private_key::impl& private_key::checked_impl() const {
  if (!impl_) throw std::logic_error("chain::private_key used after it was moved from");
  return *impl_;
}

chain::address private_key::address() const { return checked_impl().account; }

recoverable_signature private_key::sign_hash(const hash256& digest) const {
  const impl& key = checked_impl();
  const secp256k1_context* context = signing_context();

  secp256k1_ecdsa_recoverable_signature signature{};
  // Null nonce function = secp256k1_nonce_function_rfc6979 (deterministic, no RNG needed).
  if (secp256k1_ecdsa_sign_recoverable(context, &signature, digest.data(), key.secret.data(), nullptr, nullptr) != 1) {
    throw std::runtime_error("secp256k1: signing failed");
  }
  std::array<std::uint8_t, 64> compact{};
  int recovery_id = -1;
  secp256k1_ecdsa_recoverable_signature_serialize_compact(context, compact.data(), &recovery_id, &signature);
  // Ids 2 and 3 need r >= n (probability ~2^-127) and have no encoding in Ethereum's v.
  if (recovery_id != 0 && recovery_id != 1) {
    throw std::runtime_error("secp256k1: unusable recovery id " + std::to_string(recovery_id));
  }

  recoverable_signature out;
  std::copy(compact.begin(), compact.begin() + 32, out.r.begin());
  std::copy(compact.begin() + 32, compact.end(), out.s.begin());
  out.recovery_id = static_cast<std::uint8_t>(recovery_id);
  return out;
}

}  // namespace chain
