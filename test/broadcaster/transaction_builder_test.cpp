#include <catch2/catch.hpp>

#include "broadcaster/transaction_builder.hpp"
#include "chain/keccak.hpp"

namespace {
constexpr const char* anvil_key_1 = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const chain::address recipient = *chain::address::parse("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC");
}  // namespace

TEST_CASE("EIP-1559 auto fees: twice the base fee plus the node's tip", "[fees]") {
  broadcaster::chain_settings settings;
  const auto needs = broadcaster::market_needs(settings);
  CHECK(needs.base_fee);
  CHECK(needs.priority_fee);
  CHECK_FALSE(needs.gas_price);
  broadcaster::fee_market market;
  market.base_fee_per_gas = 7;
  market.max_priority_fee_per_gas = 2;
  const auto fees = broadcaster::choose_fees(settings, market);
  CHECK(fees.max_fee_per_gas == 16);
  CHECK(fees.max_priority_fee_per_gas == 2);
}

TEST_CASE("configured fees are used as they are and need no market data", "[fees]") {
  broadcaster::chain_settings settings;
  settings.max_fee_per_gas = chain::uint256(100);
  settings.max_priority_fee_per_gas = chain::uint256(3);
  const auto needs = broadcaster::market_needs(settings);
  CHECK_FALSE(needs.base_fee);
  CHECK_FALSE(needs.priority_fee);
  const auto fees = broadcaster::choose_fees(settings, {});
  CHECK(fees.max_fee_per_gas == 100);
  CHECK(fees.max_priority_fee_per_gas == 3);

  // A fixed ceiling below the node's suggested tip is refused rather than signed.
  settings.max_priority_fee_per_gas.reset();
  broadcaster::fee_market market;
  market.max_priority_fee_per_gas = 101;
  CHECK_THROWS_AS(broadcaster::choose_fees(settings, market), std::runtime_error);
}

TEST_CASE("a chain without base fee cannot use EIP-1559 auto fees", "[fees]") {
  broadcaster::chain_settings settings;
  broadcaster::fee_market market;
  market.max_priority_fee_per_gas = 1;
  CHECK_THROWS_WITH(broadcaster::choose_fees(settings, market), Catch::Contains("legacy"));
}

TEST_CASE("legacy fees: the configured price or eth_gasPrice", "[fees]") {
  broadcaster::chain_settings settings;
  settings.tx_type = broadcaster::transaction_type::legacy;
  CHECK(broadcaster::market_needs(settings).gas_price);
  broadcaster::fee_market market;
  market.gas_price = 1'000'000'007;
  CHECK(broadcaster::choose_fees(settings, market).max_fee_per_gas == 1'000'000'007);
  settings.max_fee_per_gas = chain::uint256(5);
  CHECK_FALSE(broadcaster::market_needs(settings).gas_price);
  CHECK(broadcaster::choose_fees(settings, market).max_fee_per_gas == 5);
}

TEST_CASE("build_and_sign produces the configured transaction type, deterministically", "[signing]") {
  const chain::private_key key(anvil_key_1);
  broadcaster::chain_settings settings;
  const broadcaster::payment what{31337, 4, recipient, chain::uint256("1250000000000000000")};
  const broadcaster::fee_quote fees{chain::uint256(2'000'000'000), chain::uint256(1'000'000'000)};

  const auto a = broadcaster::build_and_sign(settings, what, fees, key);
  const auto b = broadcaster::build_and_sign(settings, what, fees, key);
  CHECK(a.raw == b.raw);  // a redelivery re-signs nothing, but if it did the bytes would match
  CHECK(a.hash == chain::keccak256(a.raw));
  REQUIRE_FALSE(a.raw.empty());
  CHECK(a.raw[0] == 0x02);  // EIP-2718 envelope of an EIP-1559 transaction

  chain::eip1559_transaction expected;
  expected.chain_id = 31337;
  expected.nonce = 4;
  expected.max_priority_fee_per_gas = 1'000'000'000;
  expected.max_fee_per_gas = 2'000'000'000;
  expected.gas_limit = 21000;
  expected.to = recipient;
  expected.value = chain::uint256("1250000000000000000");
  CHECK(a.raw == chain::sign(expected, key).raw);

  settings.tx_type = broadcaster::transaction_type::legacy;
  const auto legacy = broadcaster::build_and_sign(settings, what, fees, key);
  CHECK(legacy.raw[0] >= 0xc0);  // an RLP list, no type byte
  chain::legacy_transaction expected_legacy;
  expected_legacy.chain_id = 31337;
  expected_legacy.nonce = 4;
  expected_legacy.gas_price = 2'000'000'000;
  expected_legacy.gas_limit = 21000;
  expected_legacy.to = recipient;
  expected_legacy.value = chain::uint256("1250000000000000000");
  CHECK(legacy.raw == chain::sign(expected_legacy, key).raw);

  // Another nonce is another transaction.
  auto next = what;
  next.nonce = 5;
  settings.tx_type = broadcaster::transaction_type::eip1559;
  CHECK(broadcaster::build_and_sign(settings, next, fees, key).hash != a.hash);
}

TEST_CASE("auto fees never exceed chain.max_fee_per_gas_cap, whatever the node says", "[fees]") {
  broadcaster::chain_settings settings;
  settings.max_fee_per_gas_cap = 1000;
  broadcaster::fee_market market;
  market.base_fee_per_gas = 10'000;  // a spike, or a faulty node
  market.max_priority_fee_per_gas = 5'000;
  const auto fees = broadcaster::choose_fees(settings, market);
  CHECK(fees.max_fee_per_gas == 1000);
  CHECK(fees.max_priority_fee_per_gas == 1000);
  settings.tx_type = broadcaster::transaction_type::legacy;
  market.gas_price = 99'999;
  CHECK(broadcaster::choose_fees(settings, market).max_fee_per_gas == 1000);
}

TEST_CASE("a fee bump raises both fees by at least 10 %, follows the market, and stops at the cap", "[fees]") {
  broadcaster::chain_settings settings;
  settings.max_fee_per_gas_cap = 1000;
  // +10 %, rounded up (nodes refuse a replacement below it).
  auto bumped = broadcaster::bumped_fees(settings, {101, 11}, {50, 1});
  REQUIRE(bumped.has_value());
  CHECK(bumped->max_fee_per_gas == 112);          // 111.1 rounded up
  CHECK(bumped->max_priority_fee_per_gas == 13);  // 12.1 rounded up
  // The market moved further: its quote wins.
  bumped = broadcaster::bumped_fees(settings, {100, 10}, {600, 20});
  REQUIRE(bumped.has_value());
  CHECK(bumped->max_fee_per_gas == 600);
  CHECK(bumped->max_priority_fee_per_gas == 20);
  // Never above the cap, and no bump at all when the cap leaves no room for +10 %.
  bumped = broadcaster::bumped_fees(settings, {900, 10}, {5000, 10});
  REQUIRE(bumped.has_value());
  CHECK(bumped->max_fee_per_gas == 1000);
  CHECK_FALSE(broadcaster::bumped_fees(settings, {950, 10}, {5000, 10}).has_value());
}

TEST_CASE("a cancel is a 0-value transfer to the hot wallet itself at the same nonce", "[signing]") {
  const chain::private_key key(anvil_key_1);
  const auto cancel = broadcaster::cancel_payment(31337, 7, key.address());
  CHECK(cancel.nonce == 7);
  CHECK(cancel.to == key.address());
  CHECK(cancel.value == 0);
}
