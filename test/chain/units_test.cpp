#include <catch2/catch.hpp>

#include "chain/units.hpp"

using chain::eth_decimals;
using chain::uint256;
using chain::units_error;

namespace {

// 2^256 - 1, the largest uint256.
const uint256 max_uint256("115792089237316195423570985008687907853269984665640564039457584007913129639935");

}  // namespace

TEST_CASE("parse_units converts exact decimals to base units", "[chain][units]") {
  struct example {
    std::string_view text;
    uint256 wei;
  };
  const example examples[] = {
      {"1.25", uint256("1250000000000000000")},
      {"0.000000000000000001", 1},  // one wei, the 18th decimal place
      {"1", uint256("1000000000000000000")},
      {"1.0", uint256("1000000000000000000")},
      {"0", 0},
      {"0.000", 0},
      {"000", 0},
      {"007.50", uint256("7500000000000000000")},
      {"123456789.123456789012345678", uint256("123456789123456789012345678")},
  };
  for (const auto& [text, wei] : examples) {
    INFO(text);
    const auto result = chain::parse_units(text, eth_decimals);
    REQUIRE(result.ok());
    CHECK(result.message.empty());
    CHECK(result.value == wei);
  }
  CHECK(chain::parse_units("42", 0).value == 42);
  CHECK(chain::parse_units("1.5", 6).value == 1'500'000);
}

TEST_CASE("parse_units rejects everything but a plain decimal", "[chain][units]") {
  struct example {
    std::string_view text;
    units_error error;
  };
  const example examples[] = {
      {"", units_error::empty},
      {" 1", units_error::whitespace},
      {"1 ", units_error::whitespace},
      {"1 000", units_error::whitespace},
      {"1\t", units_error::whitespace},
      {"-1", units_error::sign},
      {"+1", units_error::sign},
      {"1e18", units_error::exponent},
      {"1E18", units_error::exponent},
      {"0x10", units_error::invalid_character},
      {"1,5", units_error::invalid_character},
      {"abc", units_error::invalid_character},
      {"1-2", units_error::invalid_character},
      {"NaN", units_error::invalid_character},
      {".5", units_error::misplaced_decimal_point},
      {"5.", units_error::misplaced_decimal_point},
      {".", units_error::misplaced_decimal_point},
      {"1.2.3", units_error::misplaced_decimal_point},
      // 19 fractional digits for an 18-decimal asset, even when the extra one is zero.
      {"1.0000000000000000001", units_error::over_precise},
      {"1.0000000000000000000", units_error::over_precise},
  };
  for (const auto& [text, error] : examples) {
    INFO('"' << text << '"');
    const auto result = chain::parse_units(text, eth_decimals);
    CHECK_FALSE(result.ok());
    CHECK_FALSE(static_cast<bool>(result));
    CHECK(result.error == error);
    CHECK(result.message.rfind("amount", 0) == 0);
  }
  CHECK(chain::parse_units("1.5", 0).error == units_error::over_precise);
}

TEST_CASE("parse_units detects overflow instead of wrapping modulo 2^256", "[chain][units]") {
  // Pins silent wrap-around of boost's unchecked uint256 turning a huge amount into a small one.
  const auto largest = chain::parse_units(max_uint256.str(), 0);
  REQUIRE(largest.ok());
  CHECK(largest.value == max_uint256);

  CHECK(chain::parse_units("115792089237316195423570985008687907853269984665640564039457584007913129639936", 0).error ==
        units_error::overflow);  // 2^256
  CHECK(chain::parse_units(std::string(100, '9'), 0).error == units_error::overflow);

  // The same bound with 18 decimals: the scaling step must detect it too.
  CHECK(chain::parse_units("115792089237316195423570985008687907853269984665640564039457.584007913129639935",
                           eth_decimals)
            .value == max_uint256);
  CHECK(chain::parse_units("115792089237316195423570985008687907853269984665640564039457.584007913129639936",
                           eth_decimals)
            .error == units_error::overflow);
  CHECK(chain::parse_units("115792089237316195423570985008687907853269984665640564039458", eth_decimals).error ==
        units_error::overflow);
  // Leading zeros do not count towards the magnitude.
  CHECK(chain::parse_units(std::string(200, '0') + "1", 0).value == 1);
}

TEST_CASE("parse_units enforces an inclusive maximum", "[chain][units]") {
  const uint256 max = uint256("100000000000000000000");  // 100 ETH
  CHECK(chain::parse_units("100", eth_decimals, max).ok());
  const auto above = chain::parse_units("100.000000000000000001", eth_decimals, max);
  CHECK(above.error == units_error::above_maximum);
  CHECK(above.message == "amount exceeds the maximum of 100");
}

TEST_CASE("format_units prints the canonical decimal", "[chain][units]") {
  CHECK(chain::format_units(uint256("1250000000000000000"), eth_decimals) == "1.25");
  CHECK(chain::format_units(0, eth_decimals) == "0");
  CHECK(chain::format_units(1, eth_decimals) == "0.000000000000000001");
  CHECK(chain::format_units(uint256("1000000000000000000"), eth_decimals) == "1");
  CHECK(chain::format_units(uint256("10000000000000000000"), eth_decimals) == "10");
  CHECK(chain::format_units(uint256("100000000000000000"), eth_decimals) == "0.1");
  CHECK(chain::format_units(1234, 0) == "1234");
  CHECK(chain::format_units(1234, 2) == "12.34");
  CHECK(chain::format_units(max_uint256, eth_decimals) ==
        "115792089237316195423570985008687907853269984665640564039457.584007913129639935");
}

TEST_CASE("format_units and parse_units round-trip", "[chain][units]") {
  const uint256 values[] = {0,
                            1,
                            10,
                            999,
                            uint256("1250000000000000000"),
                            uint256("1000000000000000000"),
                            uint256("123456789012345678901234567890"),
                            max_uint256};
  for (const unsigned decimals : {0U, 6U, 18U, 30U}) {
    for (const uint256& value : values) {
      INFO(value.str() << " with " << decimals << " decimals");
      const auto parsed = chain::parse_units(chain::format_units(value, decimals), decimals);
      REQUIRE(parsed.ok());
      CHECK(parsed.value == value);
    }
  }
}

TEST_CASE("decimals above 255 are a programming error", "[chain][units]") {
  CHECK_THROWS_AS(chain::parse_units("1", 256), std::invalid_argument);
  CHECK_THROWS_AS(chain::format_units(1, 256), std::invalid_argument);
}
