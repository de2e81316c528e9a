#include <catch2/catch.hpp>

#include "events/withdrawal_created.hpp"

using events::parse_withdrawal_event;

TEST_CASE("the seed's WithdrawalCreated event parses", "[event]") {
  const auto parsed = parse_withdrawal_event(
      R"({"withdrawal_id": 17, "user_id": 4, "to_address": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", )"
      R"("amount": "1.25", "chain": "eth", "extra": true})");
  REQUIRE(parsed.event.has_value());
  CHECK(parsed.error.empty());
  CHECK(parsed.withdrawal_id == 17);
  CHECK(parsed.event->withdrawal_id == 17);
  CHECK(parsed.event->user_id == 4);
  CHECK(parsed.event->to_address == "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC");
  CHECK(parsed.event->amount == "1.25");
  CHECK(parsed.event->chain == "eth");
}

TEST_CASE("bad payloads are rejected with the field at fault", "[event]") {
  struct example {
    const char* payload;
    const char* error_contains;
    bool id_known;
  };
  const example examples[] = {
      {"not json", "not valid JSON", false},
      {"[1,2]", "JSON object", false},
      {"", "not valid JSON", false},
      {R"({"user_id": 1})", "withdrawal_id is missing", false},
      {R"({"withdrawal_id": "17"})", "withdrawal_id must be a positive integer", false},
      {R"({"withdrawal_id": -3})", "withdrawal_id must be a positive integer", false},
      {R"({"withdrawal_id": 1.5})", "withdrawal_id must be a positive integer", false},
      {R"({"withdrawal_id": 0})", "withdrawal_id must be a positive integer", false},
      {R"({"withdrawal_id": 9223372036854775808})", "withdrawal_id must be a positive integer", false},
      {R"({"withdrawal_id": 5, "user_id": 1, "amount": "1", "chain": "eth"})", "to_address is missing", true},
      {R"({"withdrawal_id": 5, "user_id": 1, "to_address": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", "amount": 1.5, "chain": "eth"})",
       "amount must be a decimal string", true},
      {R"({"withdrawal_id": 5, "user_id": 1, "to_address": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", "amount": "1e18", "chain": "eth"})",
       "amount", true},
      {R"({"withdrawal_id": 5, "user_id": 1, "to_address": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", "amount": "0.0000000000000000001", "chain": "eth"})",
       "amount", true},
      {R"({"withdrawal_id": 5, "user_id": 1, "to_address": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", "amount": "0", "chain": "eth"})",
       "amount must be above 0", true},
      {R"({"withdrawal_id": 5, "user_id": 1, "to_address": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", "amount": "1"})",
       "chain is missing", true},
      {R"({"withdrawal_id": 5, "user_id": 1, "to_address": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", "amount": "1", "chain": ""})",
       "chain must not be empty", true},
  };
  for (const auto& e : examples) {
    INFO(e.payload);
    const auto parsed = parse_withdrawal_event(e.payload);
    CHECK_FALSE(parsed.event.has_value());
    CHECK(parsed.error.find(e.error_contains) != std::string::npos);
    CHECK(parsed.withdrawal_id.has_value() == e.id_known);
  }
}

TEST_CASE("an event agrees with its row when the amounts are equal as numbers", "[event]") {
  events::withdrawal_created event{7, 4, "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc", "1.5", "eth"};
  const events::withdrawal_facts row{4, "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", "1.500000000000000000", "eth"};
  CHECK(events::describe_mismatch(event, row).empty());

  auto other = event;
  other.user_id = 5;
  CHECK(events::describe_mismatch(other, row).find("user_id") != std::string::npos);
  other = event;
  other.amount = "1.500000000000000001";
  CHECK(events::describe_mismatch(other, row).find("amount") != std::string::npos);
  other = event;
  other.to_address = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
  CHECK(events::describe_mismatch(other, row).find("to_address") != std::string::npos);
  other = event;
  other.chain = "btc";
  CHECK(events::describe_mismatch(other, row).find("chain") != std::string::npos);
}
