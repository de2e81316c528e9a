#pragma once
// Ethereum value-transfer transactions and their signing: legacy with EIP-155 replay
// protection, and EIP-1559 (type 0x02, EIP-2718 envelope) with an empty access list.
// Contract creation (no `to`) is not supported: every transaction here has a recipient.
//
// Thread-safety: pure functions; sign() may run concurrently, including with the same key.

#include <cstdint>

#include "chain/address.hpp"
#include "chain/hex.hpp"
#include "chain/keccak.hpp"
#include "chain/signer.hpp"
#include "chain/uint256.hpp"

namespace chain {

struct legacy_transaction {
  std::uint64_t nonce = 0;
  uint256 gas_price = 0;  // wei per gas
  std::uint64_t gas_limit = 0;
  address to;
  uint256 value = 0;  // wei
  bytes data;
  // No default on purpose (0 is rejected by sign()): a transaction signed for the wrong chain,
  // or without EIP-155, can be replayed on other chains.
  std::uint64_t chain_id = 0;
};

struct eip1559_transaction {
  std::uint64_t chain_id = 0;  // must be set; 0 is rejected by sign()
  std::uint64_t nonce = 0;
  uint256 max_priority_fee_per_gas = 0;  // wei per gas, tip to the block producer
  uint256 max_fee_per_gas = 0;           // wei per gas, cap on base fee + tip
  std::uint64_t gas_limit = 0;
  address to;
  uint256 value = 0;  // wei
  bytes data;
  // The access list is always empty.
};

struct signed_transaction {
  bytes raw;     // what eth_sendRawTransaction takes (hex-encode with to_hex)
  hash256 hash;  // keccak256(raw): the transaction hash nodes and explorers report
};

// The bytes whose keccak256 is signed:
//   legacy: rlp([nonce, gas_price, gas_limit, to, value, data, chain_id, 0, 0])   (EIP-155)
//   1559:   0x02 || rlp([chain_id, nonce, max_priority_fee_per_gas, max_fee_per_gas,
//                        gas_limit, to, value, data, []])
// Neither validates the fields.
[[nodiscard]] bytes signing_payload(const legacy_transaction& tx);
[[nodiscard]] bytes signing_payload(const eip1559_transaction& tx);
[[nodiscard]] hash256 signing_hash(const legacy_transaction& tx);
[[nodiscard]] hash256 signing_hash(const eip1559_transaction& tx);

// Signs and serializes:
//   legacy: rlp([nonce, gas_price, gas_limit, to, value, data, v, r, s]),
//           v = chain_id * 2 + 35 + recovery_id
//   1559:   0x02 || rlp([... the 9 fields above ..., y_parity, r, s])
// Deterministic (RFC 6979): signing the same transaction twice gives the same bytes and hash.
// Throws std::invalid_argument if chain_id is 0, or for 1559 if max_priority_fee_per_gas >
// max_fee_per_gas (nodes reject such transactions); private_key::sign_hash errors propagate.
[[nodiscard]] signed_transaction sign(const legacy_transaction& tx, const private_key& key);
[[nodiscard]] signed_transaction sign(const eip1559_transaction& tx, const private_key& key);

}  // namespace chain
