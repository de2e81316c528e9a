#include <span>
#include <string>

#include <catch2/catch.hpp>

#include "chain/address.hpp"
#include "chain/hex.hpp"

namespace {

// The test vectors of EIP-55 (https://eips.ethereum.org/EIPS/eip-55), in their checksummed form:
// all caps, all lower, and mixed case.
constexpr std::string_view eip55_examples[] = {
    "0x52908400098527886E0F7030069857D2E4169EE7", "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
    "0xde709f2102306220921060314715629080e2fb77", "0x27b1fdb04752bbc536007a920d24acb045561c26",
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB", "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
};

char flip_case(char c) {
  if (c >= 'a' && c <= 'f') return static_cast<char>(c - 'a' + 'A');
  if (c >= 'A' && c <= 'F') return static_cast<char>(c - 'A' + 'a');
  return c;
}

}  // namespace

TEST_CASE("EIP-55 examples parse and print back unchanged", "[chain][address]") {
  for (const std::string_view text : eip55_examples) {
    INFO(text);
    std::string error;
    const auto parsed = chain::address::parse(text, &error);
    REQUIRE(parsed.has_value());
    CHECK(error.empty());
    CHECK(parsed->to_checksum_string() == text);
  }
}

TEST_CASE("a one-letter case flip breaks the EIP-55 checksum", "[chain][address]") {
  // Pins the reason EIP-55 exists: a mistyped mixed-case address must not be accepted.
  for (const std::string_view text : std::span(eip55_examples).subspan(4)) {
    std::string flipped(text);
    const auto letter = flipped.find_first_of("abcdefABCDEF", 2);
    REQUIRE(letter != std::string::npos);
    flipped[letter] = flip_case(flipped[letter]);
    INFO(flipped);
    std::string error;
    CHECK_FALSE(chain::address::parse(flipped, &error, "to_address").has_value());
    CHECK(error.find("to_address") == 0);
    CHECK(error.find("EIP-55 checksum mismatch") != std::string::npos);
  }
}

TEST_CASE("all-lower and all-upper spellings skip the checksum", "[chain][address]") {
  const auto lower = chain::address::parse("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed");
  const auto upper = chain::address::parse("0x5AAEB6053F3E94C9B9A09F33669435E7EF1BEAED");
  REQUIRE(lower.has_value());
  REQUIRE(upper.has_value());
  CHECK(*lower == *upper);
  CHECK(lower->to_checksum_string() == "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed");
  CHECK(lower->to_lower_hex() == "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed");
}

TEST_CASE("malformed addresses are rejected with a message naming the field", "[chain][address]") {
  const std::string_view malformed[] = {
      "",
      "0x",
      "5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",      // no prefix
      "0X5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",    // upper-case prefix
      "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAe",     // 39 digits
      "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed00",  // 42 digits
      "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeg",    // non-hex
      " 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",   // whitespace
  };
  for (const std::string_view text : malformed) {
    INFO('"' << text << '"');
    std::string error;
    CHECK_FALSE(chain::address::parse(text, &error, "to_address").has_value());
    CHECK(error == "to_address must be 0x followed by 40 hex digits");
  }
  CHECK_FALSE(chain::address::parse("0x12").has_value());  // no error sink is fine
}

TEST_CASE("the zero address parses and reports is_zero", "[chain][address]") {
  const auto zero = chain::address::parse("0x0000000000000000000000000000000000000000");
  REQUIRE(zero.has_value());
  CHECK(zero->is_zero());
  CHECK(*zero == chain::address{});
  CHECK_FALSE(chain::address::parse(eip55_examples[4])->is_zero());
}

TEST_CASE("from_public_key hashes the uncompressed point", "[chain][address]") {
  // secp256k1 generator G = public key of private key 1; its address is the widely published
  // 0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf.
  const chain::bytes g = chain::from_hex(
      "0x0479be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
      "483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8");
  CHECK(chain::address::from_public_key(g).to_checksum_string() == "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf");
  CHECK(chain::address::from_public_key(std::span<const std::uint8_t>(g).subspan(1)) ==
        chain::address::from_public_key(g));

  chain::bytes off_curve = g;
  off_curve.back() ^= 0x01;
  CHECK_THROWS_AS(chain::address::from_public_key(off_curve), std::invalid_argument);
  CHECK_THROWS_AS(chain::address::from_public_key(chain::bytes(33, 0x02)), std::invalid_argument);
}
