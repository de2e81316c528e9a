#include "chain/transaction.hpp"

#include <stdexcept>
#include <vector>

#include "chain/rlp.hpp"

namespace chain {
namespace {

constexpr std::uint8_t eip1559_type = 0x02;

// r and s are RLP integers, so their leading zero bytes must go (about 1 in 128 signatures
// has one); nodes reject the non-canonical 32-byte form.
bytes encode_signature_part(const std::array<std::uint8_t, 32>& big_endian) {
  return rlp::encode_uint(from_big_endian(big_endian));
}

std::vector<bytes> legacy_fields(const legacy_transaction& tx) {
  return {rlp::encode_uint(tx.nonce),     rlp::encode_uint(tx.gas_price), rlp::encode_uint(tx.gas_limit),
          rlp::encode_bytes(tx.to.raw()), rlp::encode_uint(tx.value),     rlp::encode_bytes(tx.data)};
}

std::vector<bytes> eip1559_fields(const eip1559_transaction& tx) {
  return {rlp::encode_uint(tx.chain_id),
          rlp::encode_uint(tx.nonce),
          rlp::encode_uint(tx.max_priority_fee_per_gas),
          rlp::encode_uint(tx.max_fee_per_gas),
          rlp::encode_uint(tx.gas_limit),
          rlp::encode_bytes(tx.to.raw()),
          rlp::encode_uint(tx.value),
          rlp::encode_bytes(tx.data),
          rlp::encode_list(std::span<const bytes>{})};  // access list
}

bytes typed_envelope(std::uint8_t type, const std::vector<bytes>& fields) {
  bytes out{type};
  const bytes list = rlp::encode_list(fields);
  out.insert(out.end(), list.begin(), list.end());
  return out;
}

void require_chain_id(std::uint64_t chain_id) {
  if (chain_id == 0) {
    throw std::invalid_argument("transaction chain_id must be set (1 for Ethereum mainnet)");
  }
}

}  // namespace

bytes signing_payload(const legacy_transaction& tx) {
  std::vector<bytes> fields = legacy_fields(tx);
  fields.push_back(rlp::encode_uint(tx.chain_id));
  fields.push_back(rlp::encode_uint(std::uint64_t{0}));
  fields.push_back(rlp::encode_uint(std::uint64_t{0}));
  return rlp::encode_list(fields);
}

bytes signing_payload(const eip1559_transaction& tx) { return typed_envelope(eip1559_type, eip1559_fields(tx)); }

hash256 signing_hash(const legacy_transaction& tx) { return keccak256(signing_payload(tx)); }

hash256 signing_hash(const eip1559_transaction& tx) { return keccak256(signing_payload(tx)); }

signed_transaction sign(const legacy_transaction& tx, const private_key& key) {
  require_chain_id(tx.chain_id);
  const recoverable_signature signature = key.sign_hash(signing_hash(tx));

  // uint256 because chain_id * 2 + 36 overflows 64 bits for chain ids near 2^63.
  const uint256 v = uint256(tx.chain_id) * 2 + 35 + signature.recovery_id;
  std::vector<bytes> fields = legacy_fields(tx);
  fields.push_back(rlp::encode_uint(v));
  fields.push_back(encode_signature_part(signature.r));
  fields.push_back(encode_signature_part(signature.s));

  signed_transaction out;
  out.raw = rlp::encode_list(fields);
  out.hash = keccak256(out.raw);
  return out;
}

signed_transaction sign(const eip1559_transaction& tx, const private_key& key) {
  require_chain_id(tx.chain_id);
  if (tx.max_priority_fee_per_gas > tx.max_fee_per_gas) {
    throw std::invalid_argument("transaction max_priority_fee_per_gas must not exceed max_fee_per_gas");
  }
  const recoverable_signature signature = key.sign_hash(signing_hash(tx));

  std::vector<bytes> fields = eip1559_fields(tx);
  fields.push_back(rlp::encode_uint(std::uint64_t{signature.recovery_id}));
  fields.push_back(encode_signature_part(signature.r));
  fields.push_back(encode_signature_part(signature.s));

  signed_transaction out;
  out.raw = typed_envelope(eip1559_type, fields);
  out.hash = keccak256(out.raw);
  return out;
}

}  // namespace chain
