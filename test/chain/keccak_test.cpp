#include <catch2/catch.hpp>

#include "chain/hex.hpp"
#include "chain/keccak.hpp"

TEST_CASE("keccak256 matches published Keccak-256 vectors", "[chain][keccak]") {
  // Empty input: the well-known Ethereum constant (e.g. the code hash of accounts without code).
  CHECK(chain::to_hex(chain::keccak256(std::string_view{})) ==
        "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470");
  CHECK(chain::to_hex(chain::keccak256(chain::bytes{})) ==
        "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470");
  // "abc": Keccak team's known-answer test for Keccak-256 (original padding).
  CHECK(chain::to_hex(chain::keccak256(std::string_view("abc"))) ==
        "0x4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45");
}

TEST_CASE("keccak256 is not SHA3-256", "[chain][keccak]") {
  // Pins a swap to CryptoPP::SHA3_256: FIPS 202 SHA3-256("") = a7ffc6f8...80f8434a.
  CHECK(chain::to_hex(chain::keccak256(std::string_view{})) !=
        "0xa7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a");
}

TEST_CASE("keccak256 gives the ERC-20 transfer selector", "[chain][keccak]") {
  // ERC-20 (EIP-20): transfer(address,uint256) has the selector 0xa9059cbb.
  const chain::hash256 digest = chain::keccak256(std::string_view("transfer(address,uint256)"));
  CHECK(chain::to_hex(std::span<const std::uint8_t>(digest).first(4)) == "0xa9059cbb");
}
