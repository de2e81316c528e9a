// Request validation without a database: what a client may send and what is refused, with which code.

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "wallet/request.hpp"

namespace {

const wallet::chain_map& chains() {
  static const wallet::chain_map map = [] {
    wallet::chain_map m;
    m.emplace("eth", wallet::make_chain_rules("eth", 18, std::string("1000")));
    m.emplace("usd6", wallet::make_chain_rules("usd6", 6, std::nullopt));
    return m;
  }();
  return map;
}

constexpr const char* checksummed = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";  // EIP-55 test vector

std::string body(const std::string& user_id, const std::string& to_address, const std::string& amount,
                 const std::string& chain) {
  return "{\"user_id\": " + user_id + ", \"to_address\": " + to_address + ", \"amount\": " + amount +
         ", \"chain\": " + chain + "}";
}

std::string q(const std::string& s) { return "\"" + s + "\""; }

wallet::api_error refused(const std::string& text) {
  auto result = wallet::parse_withdrawal_request(text, chains());
  REQUIRE(std::holds_alternative<wallet::api_error>(result));
  return std::get<wallet::api_error>(result);
}

}  // namespace

TEST_CASE("a valid withdrawal parses to its canonical values", "[wallet][request]") {
  auto result = wallet::parse_withdrawal_request(body("42", q(checksummed), q("001.2500"), q("eth")), chains());
  REQUIRE(std::holds_alternative<wallet::withdrawal_request>(result));
  const auto& r = std::get<wallet::withdrawal_request>(result);
  CHECK(r.user_id == 42);
  CHECK(r.to_address == checksummed);  // kept as sent
  CHECK(r.amount == "1.25");           // canonical decimal, not the text as sent
  CHECK(r.chain == "eth");

  // All-lower-case and all-upper-case addresses carry no checksum and are accepted as they are.
  CHECK(std::holds_alternative<wallet::withdrawal_request>(wallet::parse_withdrawal_request(
      body("1", q("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"), q("1"), q("eth")), chains())));
  CHECK(std::holds_alternative<wallet::withdrawal_request>(wallet::parse_withdrawal_request(
      body("1", q("0x5AAEB6053F3E94C9B9A09F33669435E7EF1BEAED"), q("0.000000000000000001"), q("eth")), chains())));
  // The smallest unit of a 6-decimal chain, and its largest representable whole amount stays exact.
  auto usd =
      wallet::parse_withdrawal_request(body("9223372036854775807", q(checksummed), q("0.000001"), q("usd6")), chains());
  REQUIRE(std::holds_alternative<wallet::withdrawal_request>(usd));
  CHECK(std::get<wallet::withdrawal_request>(usd).user_id == 9223372036854775807LL);
}

TEST_CASE("malformed JSON and wrong shapes are invalid_json", "[wallet][request]") {
  CHECK(refused("{").code == "invalid_json");
  CHECK(refused("").code == "invalid_json");
  CHECK(refused("[1, 2]").code == "invalid_json");
  CHECK(refused("\"text\"").code == "invalid_json");
  CHECK(refused(body("42", q(checksummed), q("1"), q("eth")) + " trailing").code == "invalid_json");
  // Duplicate keys: which amount would count depends on the parser, so none does.
  const auto dup = refused(R"({"user_id": 42, "to_address": ")" + std::string(checksummed) +
                           R"(", "amount": "1", "amount": "1000", "chain": "eth"})");
  CHECK(dup.code == "invalid_json");
  CHECK_THAT(dup.message, Catch::Contains("amount"));
}

TEST_CASE("fields are exactly user_id, to_address, amount and chain", "[wallet][request]") {
  const auto extra = refused(R"({"user_id": 42, "to_address": ")" + std::string(checksummed) +
                             R"(", "amount": "1", "chain": "eth", "memo": "x"})");
  CHECK(extra.code == "unknown_field");
  CHECK_THAT(extra.message, Catch::Contains("memo"));
  const auto missing =
      refused(R"({"user_id": 42, "to_address": ")" + std::string(checksummed) + R"(", "chain": "eth"})");
  CHECK(missing.code == "missing_field");
  CHECK_THAT(missing.message, Catch::Contains("amount"));
  CHECK(refused("{}").code == "missing_field");
}

TEST_CASE("wrong types are invalid_type, naming the field", "[wallet][request]") {
  for (const char* user_id :
       {"\"42\"", "0", "-1", "4.2", "1e3", "true", "null", "9223372036854775808", "18446744073709551616"}) {
    INFO(user_id);
    const auto e = refused(body(user_id, q(checksummed), q("1"), q("eth")));
    CHECK(e.code == "invalid_type");
    CHECK_THAT(e.message, Catch::Contains("user_id"));
  }
  const auto number = refused(body("42", q(checksummed), "1.25", q("eth")));
  CHECK(number.code == "invalid_type");
  CHECK_THAT(number.message, Catch::Contains("decimal string"));
  CHECK(refused(body("42", q(checksummed), "null", q("eth"))).code == "invalid_type");
  CHECK(refused(body("42", "42", q("1"), q("eth"))).code == "invalid_type");
  CHECK(refused(body("42", q(checksummed), q("1"), "1")).code == "invalid_type");
}

TEST_CASE("amounts: zero, signs, exponents, over-precise and over-range are invalid_amount", "[wallet][request]") {
  for (const char* amount : {"0", "0.000", "-1", "+1", "1e18", "1E2", "0x10", "1,5", ".5", "5.", "1.2.3", " 1", "1 ",
                             "", "abc", "1.0000000000000000001", "1000.000000000000000001", "1001",
                             "1000000000000000000000000000000000000000000000000000000000000000000000000000000000"}) {
    INFO(amount);
    const auto e = refused(body("42", q(checksummed), q(amount), q("eth")));
    CHECK(e.code == "invalid_amount");
    CHECK(e.status == 400);
    CHECK_THAT(e.message, Catch::Contains("amount"));
  }
  // The configured maximum is inclusive.
  CHECK(std::holds_alternative<wallet::withdrawal_request>(
      wallet::parse_withdrawal_request(body("42", q(checksummed), q("1000"), q("eth")), chains())));
  // A 6-decimal chain refuses a 7th fractional digit, and anything numeric(78, 18) cannot hold.
  CHECK(refused(body("42", q(checksummed), q("0.0000001"), q("usd6"))).code == "invalid_amount");
  CHECK(refused(body("42", q(checksummed), q("1" + std::string(60, '0')), q("usd6"))).code == "invalid_amount");
  CHECK(std::holds_alternative<wallet::withdrawal_request>(
      wallet::parse_withdrawal_request(body("42", q(checksummed), q(std::string(60, '9')), q("usd6")), chains())));
}

TEST_CASE("unknown chains and bad addresses are refused", "[wallet][request]") {
  const auto chain = refused(body("42", q(checksummed), q("1"), q("btc")));
  CHECK(chain.code == "unknown_chain");
  CHECK_THAT(chain.message, Catch::Contains("eth"));
  CHECK(refused(body("42", q(checksummed), q("1"), q("ETH"))).code == "unknown_chain");

  for (const char* address :
       {"5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAe",
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAedd", "0xgaAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        // One letter's case flipped: the EIP-55 checksum no longer matches.
        "0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "0x0000000000000000000000000000000000000000", ""}) {
    INFO(address);
    const auto e = refused(body("42", q(address), q("1"), q("eth")));
    CHECK(e.code == "invalid_address");
    CHECK_THAT(e.message, Catch::Contains("to_address"));
  }
}

TEST_CASE("deposits take exactly a positive decimal amount string", "[wallet][request]") {
  auto ok = wallet::parse_deposit_request(R"({"amount": "10.50"})");
  REQUIRE(std::holds_alternative<std::string>(ok));
  CHECK(std::get<std::string>(ok) == "10.5");
  auto code = [](const char* text) { return std::get<wallet::api_error>(wallet::parse_deposit_request(text)).code; };
  CHECK(code(R"({"amount": 10})") == "invalid_type");
  CHECK(code(R"({"amount": "0"})") == "invalid_amount");
  CHECK(code(R"({"amount": "1e3"})") == "invalid_amount");
  CHECK(code(R"({"amount": "1", "user_id": 4})") == "unknown_field");
  CHECK(code(R"({})") == "missing_field");
  CHECK(code(R"(nope)") == "invalid_json");
}

TEST_CASE("the request digest covers every field and nothing else", "[wallet][request]") {
  const wallet::withdrawal_request a{42, checksummed, "1.25", "eth"};
  CHECK(wallet::request_digest(a) == wallet::request_digest(a));
  CHECK(wallet::request_digest(a).size() == 64);
  auto differs = [&](wallet::withdrawal_request b) { return wallet::request_digest(a) != wallet::request_digest(b); };
  CHECK(differs({43, checksummed, "1.25", "eth"}));
  CHECK(differs({42, "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", "1.25", "eth"}));
  CHECK(differs({42, checksummed, "1.26", "eth"}));
  CHECK(differs({42, checksummed, "1.25", "usd6"}));
}

TEST_CASE("Idempotency-Key values", "[wallet][request]") {
  CHECK_FALSE(wallet::check_idempotency_key("3f2b9c1e-0d1a-4c55-9e77-1f0b6a1d2c3e"));
  CHECK_FALSE(wallet::check_idempotency_key(std::string(255, 'k')));
  CHECK(wallet::check_idempotency_key("")->code == "invalid_idempotency_key");
  CHECK(wallet::check_idempotency_key(std::string(256, 'k')));
  CHECK(wallet::check_idempotency_key("with space"));
  CHECK(wallet::check_idempotency_key("caf\xc3\xa9"));
}

TEST_CASE("traceparent headers are kept only when valid", "[wallet][request]") {
  const std::string valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  CHECK(wallet::valid_traceparent(valid) == valid);
  CHECK(wallet::valid_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"));
  CHECK_FALSE(wallet::valid_traceparent(""));
  CHECK_FALSE(wallet::valid_traceparent(valid + "-x"));  // version 00 has exactly four fields
  CHECK_FALSE(wallet::valid_traceparent("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  CHECK_FALSE(wallet::valid_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01"));
  CHECK_FALSE(wallet::valid_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"));
  CHECK_FALSE(wallet::valid_traceparent("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"));
  CHECK_FALSE(wallet::valid_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0"));
}

TEST_CASE("content types, ids and stored decimals", "[wallet][request]") {
  CHECK(wallet::is_json_content_type("application/json"));
  CHECK(wallet::is_json_content_type("Application/JSON; charset=utf-8"));
  CHECK_FALSE(wallet::is_json_content_type(""));
  CHECK_FALSE(wallet::is_json_content_type("text/plain"));
  CHECK_FALSE(wallet::is_json_content_type("application/jsonx"));
  CHECK_FALSE(wallet::is_json_content_type("application/x-www-form-urlencoded"));

  CHECK(wallet::parse_positive_id("42") == 42);
  CHECK(wallet::parse_positive_id("9223372036854775807") == 9223372036854775807LL);
  for (const char* bad : {"", "0", "042", "-1", "+1", "1.0", "x", "9223372036854775808", "99999999999999999999"}) {
    INFO(bad);
    CHECK_FALSE(wallet::parse_positive_id(bad));
  }

  CHECK(wallet::canonical_decimal("1.250000000000000000") == "1.25");
  CHECK(wallet::canonical_decimal("0.000000000000000000") == "0");
  CHECK(wallet::canonical_decimal("100.000000000000000001") == "100.000000000000000001");
  CHECK(wallet::canonical_decimal("0010.000000000000000000") == "10");
  // Balances may exceed 2^256 base units; numeric(78, 18) holds up to 10^60.
  CHECK(wallet::canonical_decimal(std::string(60, '9') + ".900000000000000000") == std::string(60, '9') + ".9");
  for (const char* bad : {"-1.0", "", ".5", "5.", "1e3", "NaN", "1.0000000000000000001"}) {
    INFO(bad);
    CHECK_THROWS_AS(wallet::canonical_decimal(bad), std::invalid_argument);
  }
}
