#include <stdexcept>

#include <catch2/catch.hpp>

#include "chain/hex.hpp"

using chain::bytes;

TEST_CASE("to_hex writes lower-case digits with an optional 0x", "[chain][hex]") {
  const bytes data{0xde, 0xad, 0xbe, 0xef, 0x00, 0x0f};
  CHECK(chain::to_hex(data) == "0xdeadbeef000f");
  CHECK(chain::to_hex(data, false) == "deadbeef000f");
  CHECK(chain::to_hex(bytes{}) == "0x");
  CHECK(chain::to_hex(bytes{}, false).empty());
}

TEST_CASE("from_hex accepts both cases and an optional prefix", "[chain][hex]") {
  CHECK(chain::from_hex("0xDEADbeef") == bytes{0xde, 0xad, 0xbe, 0xef});
  CHECK(chain::from_hex("0XdeAD") == bytes{0xde, 0xad});
  CHECK(chain::from_hex("00ff") == bytes{0x00, 0xff});
  CHECK(chain::from_hex("0x").empty());
  CHECK(chain::from_hex("").empty());
}

TEST_CASE("from_hex rejects odd lengths and non-hex characters", "[chain][hex]") {
  CHECK_THROWS_AS(chain::from_hex("0xabc"), std::invalid_argument);
  CHECK_THROWS_AS(chain::from_hex("0xzz"), std::invalid_argument);
  CHECK_THROWS_AS(chain::from_hex("0x 1"), std::invalid_argument);
  CHECK_THROWS_AS(chain::from_hex("0x0x12"), std::invalid_argument);
  CHECK_THROWS_AS(chain::from_hex("-1"), std::invalid_argument);
}

TEST_CASE("from_hex into a fixed buffer requires the exact size", "[chain][hex]") {
  std::array<std::uint8_t, 2> out{};
  chain::from_hex("0x0102", out);
  CHECK(out == std::array<std::uint8_t, 2>{0x01, 0x02});
  CHECK_THROWS_AS(chain::from_hex("0x010203", out), std::invalid_argument);
  CHECK_THROWS_AS(chain::from_hex("0x01", out), std::invalid_argument);
}

TEST_CASE("from_hex error messages do not echo the input", "[chain][hex]") {
  // Pins the leak of a secret (private key hex) into logs through an exception message.
  try {
    (void)chain::from_hex("0xsecretsecret");
    FAIL("expected std::invalid_argument");
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()).find("secret") == std::string::npos);
  }
}
