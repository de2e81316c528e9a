#include <catch2/catch.hpp>

#include "chain/hex.hpp"
#include "chain/rlp.hpp"

namespace rlp = chain::rlp;
using chain::bytes;
using chain::to_hex;

// Examples from the Ethereum RLP specification
// (https://ethereum.org/en/developers/docs/data-structures-and-encoding/rlp/, formerly the wiki).

TEST_CASE("RLP encodes byte strings", "[chain][rlp]") {
  CHECK(to_hex(rlp::encode_string("dog")) == "0x83646f67");
  CHECK(to_hex(rlp::encode_string("")) == "0x80");
  CHECK(to_hex(rlp::encode_bytes(bytes{0x00})) == "0x00");
  CHECK(to_hex(rlp::encode_bytes(bytes{0x0f})) == "0x0f");
  CHECK(to_hex(rlp::encode_bytes(bytes{0x7f})) == "0x7f");
  CHECK(to_hex(rlp::encode_bytes(bytes{0x80})) == "0x8180");  // a single byte >= 0x80 gets a prefix
  CHECK(to_hex(rlp::encode_bytes(bytes{0x04, 0x00})) == "0x820400");
  // 56 bytes: the first length that needs a length-of-length prefix (0xb8).
  CHECK(to_hex(rlp::encode_string("Lorem ipsum dolor sit amet, consectetur adipisicing elit")) ==
        "0xb8384c6f72656d20697073756d20646f6c6f722073697420616d65742c20636f6e736563746574"
        "7572206164697069736963696e6720656c6974");
  CHECK(rlp::encode_string(std::string(55, 'a')).front() == 0xb7);
}

TEST_CASE("RLP encodes long strings with a multi-byte length", "[chain][rlp]") {
  const bytes encoded = rlp::encode_bytes(bytes(1024, 0xaa));
  REQUIRE(encoded.size() == 3 + 1024);
  CHECK(to_hex(std::span<const std::uint8_t>(encoded).first(3)) == "0xb90400");
}

TEST_CASE("RLP encodes unsigned integers minimally", "[chain][rlp]") {
  CHECK(to_hex(rlp::encode_uint(std::uint64_t{0})) == "0x80");
  CHECK(to_hex(rlp::encode_uint(std::uint64_t{15})) == "0x0f");
  CHECK(to_hex(rlp::encode_uint(std::uint64_t{127})) == "0x7f");
  CHECK(to_hex(rlp::encode_uint(std::uint64_t{128})) == "0x8180");
  CHECK(to_hex(rlp::encode_uint(std::uint64_t{1024})) == "0x820400");
  CHECK(to_hex(rlp::encode_uint(std::uint64_t{0xffffffffffffffff})) == "0x88ffffffffffffffff");

  CHECK(to_hex(rlp::encode_uint(chain::uint256(0))) == "0x80");
  CHECK(to_hex(rlp::encode_uint(chain::uint256(1024))) == "0x820400");
  // 10^18 wei, as in the EIP-155 example transaction.
  CHECK(to_hex(rlp::encode_uint(chain::uint256("1000000000000000000"))) == "0x880de0b6b3a7640000");
  CHECK(to_hex(rlp::encode_uint(~chain::uint256(0))) ==
        "0xa0ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff");
}

TEST_CASE("RLP encodes lists", "[chain][rlp]") {
  CHECK(to_hex(rlp::encode_list({rlp::encode_string("cat"), rlp::encode_string("dog")})) == "0xc88363617483646f67");
  CHECK(to_hex(rlp::encode_list(std::span<const bytes>{})) == "0xc0");

  // The set-theoretical representation of three: [ [], [[]], [ [], [[]] ] ].
  const bytes empty = rlp::encode_list(std::span<const bytes>{});
  const bytes one = rlp::encode_list({empty});
  const bytes two = rlp::encode_list({empty, one});
  CHECK(to_hex(rlp::encode_list({empty, one, two})) == "0xc7c0c1c0c3c0c1c0");

  // A list payload of 56+ bytes needs the 0xf8 form.
  const std::vector<bytes> items(20, rlp::encode_string("dog"));  // 20 * 4 = 80 bytes
  const bytes long_list = rlp::encode_list(items);
  REQUIRE(long_list.size() == 2 + 80);
  CHECK(to_hex(std::span<const std::uint8_t>(long_list).first(2)) == "0xf850");
}
