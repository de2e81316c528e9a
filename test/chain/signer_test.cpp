#include <ostream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include <catch2/catch.hpp>

#include "chain/hex.hpp"
#include "chain/keccak.hpp"
#include "chain/signer.hpp"
#include "chain/uint256.hpp"

namespace {

template <typename T>
concept streamable = requires(std::ostream& out, const T& value) {
  out << value;
};

// Anvil / Hardhat default accounts 0 and 1 (printed by `anvil` at start-up, mnemonic
// "test test test test test test test test test test test junk").
constexpr std::string_view anvil_key_0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
constexpr std::string_view anvil_key_1 = "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

}  // namespace

// Pins accidental logging of keys: these must stay compile-time facts.
static_assert(!streamable<chain::private_key>);
static_assert(!std::is_copy_constructible_v<chain::private_key>);
static_assert(!std::is_copy_assignable_v<chain::private_key>);
static_assert(std::is_nothrow_move_constructible_v<chain::private_key>);

TEST_CASE("private keys derive the published account addresses", "[chain][signer]") {
  CHECK(chain::private_key(anvil_key_0).address().to_checksum_string() == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
  CHECK(chain::private_key(anvil_key_1).address().to_checksum_string() == "0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
  // Private key 1: its public key is the generator G.
  CHECK(chain::private_key(std::string(63, '0') + "1").address().to_checksum_string() ==
        "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf");
}

TEST_CASE("invalid private keys are rejected without echoing them", "[chain][signer]") {
  const std::string rejected[] = {
      "",
      "0x1234",
      std::string(65, '1'),               // odd length
      std::string(66, '1'),               // 33 bytes
      "0x" + std::string(63, '1') + "g",  // non-hex
      std::string(64, '0'),               // zero
      // The curve order n: one past the largest valid key.
      "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
      std::string(64, 'f'),
  };
  for (const std::string& text : rejected) {
    INFO("case of length " << text.size());
    try {
      const chain::private_key key(text);
      FAIL("expected std::invalid_argument");
    } catch (const std::invalid_argument& e) {
      const std::string message = e.what();
      CHECK(message.find("private key") != std::string::npos);
      if (text.size() >= 8) CHECK(message.find(text.substr(text.size() - 8)) == std::string::npos);
    }
  }
  // n - 1 is the largest valid key.
  CHECK_NOTHROW(chain::private_key("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140"));
}

TEST_CASE("signatures are deterministic and low-S", "[chain][signer]") {
  const chain::private_key key(anvil_key_0);
  const chain::hash256 digest = chain::keccak256(std::string_view("withdrawal 42"));
  const auto first = key.sign_hash(digest);
  const auto second = key.sign_hash(digest);
  CHECK(first.r == second.r);
  CHECK(first.s == second.s);
  CHECK(first.recovery_id == second.recovery_id);
  CHECK(first.recovery_id <= 1);

  // EIP-2: s must not exceed n / 2.
  const chain::uint256 half_order("0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0");
  CHECK(chain::from_big_endian(first.s) <= half_order);

  const auto other = key.sign_hash(chain::keccak256(std::string_view("withdrawal 43")));
  CHECK(other.r != first.r);
}

TEST_CASE("a moved-from key refuses to work, the moved-to key works", "[chain][signer]") {
  chain::private_key original(anvil_key_0);
  chain::private_key moved(std::move(original));
  CHECK(moved.address().to_checksum_string() == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
  // NOLINTNEXTLINE(bugprone-use-after-move): the behaviour after a move is the point here.
  CHECK_THROWS_AS(original.address(), std::logic_error);
  CHECK_THROWS_AS(original.sign_hash(chain::hash256{}), std::logic_error);

  original = chain::private_key(anvil_key_1);
  CHECK(original.address().to_checksum_string() == "0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
}
