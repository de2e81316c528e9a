#include <memory>
#include <stdexcept>

#include <catch2/catch.hpp>
#include <secp256k1.h>
#include <secp256k1_recovery.h>

#include "chain/hex.hpp"
#include "chain/rlp.hpp"
#include "chain/transaction.hpp"

using chain::bytes;
using chain::uint256;

namespace {

// --- Independent checks: a minimal RLP reader and libsecp256k1 recovery, not chain's code. ---

struct rlp_item {
  bool is_list = false;
  bytes payload;
};

// The top-level items of the RLP list that starts at `data[0]` and spans all of `data`.
std::vector<rlp_item> decode_list(std::span<const std::uint8_t> data) {
  std::size_t pos = 0;
  const auto next_byte = [&]() -> std::uint8_t {
    REQUIRE(pos < data.size());
    return data[pos++];
  };
  const auto read_length = [&](std::size_t length_of_length) {
    std::size_t length = 0;
    for (std::size_t i = 0; i < length_of_length; ++i) length = (length << 8U) | next_byte();
    return length;
  };
  const auto read_header = [&](bool& is_list) -> std::size_t {
    const std::uint8_t prefix = next_byte();
    if (prefix < 0x80) {
      --pos;  // the byte is its own payload
      is_list = false;
      return 1;
    }
    if (prefix <= 0xb7) {
      is_list = false;
      return prefix - 0x80U;
    }
    if (prefix <= 0xbf) {
      is_list = false;
      return read_length(prefix - 0xb7U);
    }
    if (prefix <= 0xf7) {
      is_list = true;
      return prefix - 0xc0U;
    }
    is_list = true;
    return read_length(prefix - 0xf7U);
  };

  bool outer_is_list = false;
  const std::size_t outer_length = read_header(outer_is_list);
  REQUIRE(outer_is_list);
  REQUIRE(pos + outer_length == data.size());

  std::vector<rlp_item> items;
  while (pos < data.size()) {
    rlp_item item;
    const std::size_t length = read_header(item.is_list);
    REQUIRE(pos + length <= data.size());
    item.payload.assign(data.begin() + static_cast<std::ptrdiff_t>(pos),
                        data.begin() + static_cast<std::ptrdiff_t>(pos + length));
    pos += length;
    items.push_back(std::move(item));
  }
  return items;
}

struct context_deleter {
  void operator()(secp256k1_context* context) const noexcept { secp256k1_context_destroy(context); }
};

// The address that produced signature (r, s, recovery_id) over `digest`, via libsecp256k1.
chain::address recover_signer(const chain::hash256& digest, const bytes& r, const bytes& s, int recovery_id) {
  const std::unique_ptr<secp256k1_context, context_deleter> context(secp256k1_context_create(SECP256K1_CONTEXT_NONE));
  // RLP strips leading zeros; the compact form wants two 32-byte big-endian halves.
  REQUIRE(r.size() <= 32);
  REQUIRE(s.size() <= 32);
  std::array<std::uint8_t, 64> compact{};
  std::copy(r.begin(), r.end(), compact.begin() + static_cast<std::ptrdiff_t>(32 - r.size()));
  std::copy(s.begin(), s.end(), compact.end() - static_cast<std::ptrdiff_t>(s.size()));

  secp256k1_ecdsa_recoverable_signature signature{};
  REQUIRE(secp256k1_ecdsa_recoverable_signature_parse_compact(context.get(), &signature, compact.data(), recovery_id) ==
          1);
  secp256k1_pubkey public_key{};
  REQUIRE(secp256k1_ecdsa_recover(context.get(), &public_key, &signature, digest.data()) == 1);
  std::array<std::uint8_t, 65> serialized{};
  std::size_t size = serialized.size();
  REQUIRE(secp256k1_ec_pubkey_serialize(context.get(), serialized.data(), &size, &public_key,
                                        SECP256K1_EC_UNCOMPRESSED) == 1);
  return chain::address::from_public_key(serialized);
}

chain::address parse_address(std::string_view text) {
  const auto parsed = chain::address::parse(text);
  REQUIRE(parsed.has_value());
  return *parsed;
}

// The example of EIP-155 (https://eips.ethereum.org/EIPS/eip-155#example).
chain::legacy_transaction eip155_example() {
  chain::legacy_transaction tx;
  tx.nonce = 9;
  tx.gas_price = uint256(20'000'000'000ULL);  // 20 gwei
  tx.gas_limit = 21000;
  tx.to = parse_address("0x3535353535353535353535353535353535353535");
  tx.value = uint256("1000000000000000000");  // 10^18 wei
  tx.chain_id = 1;
  return tx;
}

constexpr std::string_view eip155_key = "0x4646464646464646464646464646464646464646464646464646464646464646";

constexpr std::string_view anvil_key_0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

}  // namespace

TEST_CASE("EIP-155 example: signing data, signing hash and signed transaction", "[chain][transaction]") {
  const chain::legacy_transaction tx = eip155_example();
  CHECK(chain::to_hex(chain::signing_payload(tx)) ==
        "0xec098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a7640000"
        "80018080");
  CHECK(chain::to_hex(chain::signing_hash(tx)) == "0xdaf5a779ae972f972197303d7b574746c7ef83eadac0f2791ad23db92e4c8e53");

  // The EIP lists (v, r, s) = (37, 18515461264373351373200002665853028612451056578545711640558177340181847433846,
  // 46948507304638947509940763649030358759909902576025900602547168820602576006531) and this raw
  // transaction; RFC 6979 makes r and s deterministic, so it must match byte for byte.
  const chain::private_key key(eip155_key);
  const chain::signed_transaction signed_tx = chain::sign(tx, key);
  CHECK(chain::to_hex(signed_tx.raw) ==
        "0xf86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a7640000"
        "8025a028ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d8997f"
        "761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83");
  CHECK(signed_tx.hash == chain::keccak256(signed_tx.raw));
  // The sender of the EIP-155 example, as every client reports it.
  CHECK(key.address().to_checksum_string() == "0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F");

  const auto items = decode_list(signed_tx.raw);
  REQUIRE(items.size() == 9);
  CHECK(chain::from_big_endian(items[6].payload) == 37);
  CHECK(chain::from_big_endian(items[7].payload) ==
        uint256("18515461264373351373200002665853028612451056578545711640558177340181847433846"));
  CHECK(chain::from_big_endian(items[8].payload) ==
        uint256("46948507304638947509940763649030358759909902576025900602547168820602576006531"));
  CHECK(recover_signer(chain::signing_hash(tx), items[7].payload, items[8].payload, 0) == key.address());
}

TEST_CASE("legacy v encodes the chain id and recovery id", "[chain][transaction]") {
  chain::legacy_transaction tx = eip155_example();
  tx.chain_id = 11155111;  // Sepolia
  const chain::private_key key(anvil_key_0);
  const auto items = decode_list(chain::sign(tx, key).raw);
  REQUIRE(items.size() == 9);
  const uint256 v = chain::from_big_endian(items[6].payload);
  const auto recovery_id = static_cast<int>(v - (uint256(tx.chain_id) * 2 + 35));
  REQUIRE((recovery_id == 0 || recovery_id == 1));
  CHECK(recover_signer(chain::signing_hash(tx), items[7].payload, items[8].payload, recovery_id) == key.address());
}

TEST_CASE("r and s with leading zero bytes are encoded as minimal integers", "[chain][transaction]") {
  // Pins the classic bug of writing r/s as fixed 32-byte strings: nodes reject such
  // transactions as non-canonical. About 1 in 128 signatures has a leading zero byte;
  // RFC 6979 makes the search below deterministic.
  const chain::private_key key(anvil_key_0);
  chain::legacy_transaction tx = eip155_example();
  bool found = false;
  for (std::uint64_t nonce = 0; nonce < 5000 && !found; ++nonce) {
    tx.nonce = nonce;
    const auto signature = key.sign_hash(chain::signing_hash(tx));
    if (signature.r[0] != 0 && signature.s[0] != 0) continue;
    found = true;
    const auto items = decode_list(chain::sign(tx, key).raw);
    REQUIRE(items.size() == 9);
    INFO("nonce " << nonce);
    CHECK(items[7].payload.size() < 32 + (signature.r[0] != 0 ? 1U : 0U));
    CHECK(items[8].payload.size() < 32 + (signature.s[0] != 0 ? 1U : 0U));
    CHECK(items[7].payload.front() != 0);
    CHECK(items[8].payload.front() != 0);
    const int recovery_id = static_cast<int>(chain::from_big_endian(items[6].payload) - 37);
    CHECK(recover_signer(chain::signing_hash(tx), items[7].payload, items[8].payload, recovery_id) == key.address());
  }
  CHECK(found);
}

TEST_CASE("EIP-1559 transactions are type 2 and recover to the signer", "[chain][transaction]") {
  chain::eip1559_transaction tx;
  tx.chain_id = 1;
  tx.nonce = 7;
  tx.max_priority_fee_per_gas = uint256(2'000'000'000ULL);
  tx.max_fee_per_gas = uint256(100'000'000'000ULL);
  tx.gas_limit = 21000;
  tx.to = parse_address("0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
  tx.value = uint256("1250000000000000000");

  const chain::private_key key(anvil_key_0);
  const chain::signed_transaction signed_tx = chain::sign(tx, key);
  REQUIRE(signed_tx.raw.size() > 1);
  CHECK(signed_tx.raw[0] == 0x02);
  // The transaction hash covers the type byte too (EIP-2718).
  CHECK(signed_tx.hash == chain::keccak256(signed_tx.raw));
  CHECK(chain::sign(tx, key).raw == signed_tx.raw);  // deterministic

  const auto items = decode_list(std::span<const std::uint8_t>(signed_tx.raw).subspan(1));
  REQUIRE(items.size() == 12);
  CHECK(chain::from_big_endian(items[0].payload) == 1);  // chain id
  CHECK(chain::from_big_endian(items[1].payload) == 7);  // nonce
  CHECK(items[5].payload == bytes(tx.to.raw().begin(), tx.to.raw().end()));
  CHECK(chain::from_big_endian(items[6].payload) == tx.value);
  CHECK(items[8].is_list);
  CHECK(items[8].payload.empty());  // access list
  const uint256 y_parity = chain::from_big_endian(items[9].payload);
  REQUIRE(y_parity <= 1);
  CHECK(recover_signer(chain::signing_hash(tx), items[10].payload, items[11].payload, static_cast<int>(y_parity)) ==
        parse_address("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"));
}

TEST_CASE("EIP-1559 encoding matches a published Nethereum vector", "[chain][transaction]") {
  // From Nethereum's "EIP1559 RLP Nethereum Signing test scenarios"
  // (https://gist.github.com/juanfranblanco/4cc998247aecd822d6088e382d94a6f1), scenario
  // chainId 1559, nonce 2, tip 3, max fee 4, gas 3500, to 0x1ad9..5836, amount 10, data 0x1232.
  chain::eip1559_transaction tx;
  tx.chain_id = 1559;
  tx.nonce = 2;
  tx.max_priority_fee_per_gas = 3;
  tx.max_fee_per_gas = 4;
  tx.gas_limit = 3500;
  tx.to = parse_address("0x1ad91ee08f21be3de0ba2ba6918e714da6b45836");
  tx.value = 10;
  tx.data = chain::from_hex("0x1232");
  CHECK(chain::to_hex(chain::signing_payload(tx)) ==
        "0x02e3820617020304820dac941ad91ee08f21be3de0ba2ba6918e714da6b458360a821232c0");

  const chain::private_key key("0xb5b1870957d373ef0eeffecc6e4812c0fd08f554b37b233526acc331bf1544f7");
  const std::string raw = chain::to_hex(chain::sign(tx, key).raw);
  // The published signed form, through y-parity and r (RFC 6979 makes r deterministic).
  CHECK(raw.rfind("0x02f866820617020304820dac941ad91ee08f21be3de0ba2ba6918e714da6b458360a821232c0"
                  "80a0d5ee3f01ce51d2b2930b268361be6fe9fc542e09311336d335cc4658d7bd7128a0",
                  0) == 0);
}

TEST_CASE("sign rejects transactions nodes would refuse or replay", "[chain][transaction]") {
  const chain::private_key key(anvil_key_0);
  chain::legacy_transaction legacy = eip155_example();
  legacy.chain_id = 0;
  CHECK_THROWS_AS(chain::sign(legacy, key), std::invalid_argument);

  chain::eip1559_transaction tx;
  tx.chain_id = 1;
  tx.max_priority_fee_per_gas = 5;
  tx.max_fee_per_gas = 4;
  CHECK_THROWS_AS(chain::sign(tx, key), std::invalid_argument);
  tx.chain_id = 0;
  tx.max_priority_fee_per_gas = 1;
  CHECK_THROWS_AS(chain::sign(tx, key), std::invalid_argument);
}
