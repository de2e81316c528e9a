#include "events/withdrawal_created.hpp"

#include <cstdint>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "chain/address.hpp"
#include "chain/units.hpp"

namespace events {

using json = nlohmann::json;

namespace {

// A JSON integer that fits int64 and is positive. Floats ("1.0", "1e3") are rejected: ids are exact.
std::optional<std::int64_t> positive_id(const json& object, const char* field, std::string& error) {
  const auto it = object.find(field);
  if (it == object.end()) {
    error = fmt::format("{} is missing", field);
    return std::nullopt;
  }
  if (it->is_number_unsigned()) {
    const auto value = it->get<std::uint64_t>();
    if (value > 0 && value <= static_cast<std::uint64_t>(INT64_MAX)) return static_cast<std::int64_t>(value);
  }
  error = fmt::format("{} must be a positive integer, got {}", field, it->dump());
  return std::nullopt;
}

std::optional<std::string> text_field(const json& object, const char* field, std::string& error) {
  const auto it = object.find(field);
  if (it == object.end()) {
    error = fmt::format("{} is missing", field);
    return std::nullopt;
  }
  if (!it->is_string()) {
    error = fmt::format("{} must be a string, got {}", field, it->dump());
    return std::nullopt;
  }
  return it->get<std::string>();
}

}  // namespace

std::string to_payload(const withdrawal_created& event) {
  const nlohmann::ordered_json payload = {{"withdrawal_id", event.withdrawal_id},
                                          {"user_id", event.user_id},
                                          {"to_address", event.to_address},
                                          {"amount", event.amount},
                                          {"chain", event.chain}};
  return payload.dump();
}

std::string event_key(const withdrawal_created& event) { return std::to_string(event.user_id); }

std::string event_headers_json(std::string_view created_at, const std::optional<std::string>& traceparent) {
  json headers = {{std::string(event_type_header), withdrawal_created_type},
                  {std::string(created_at_header), created_at}};
  if (traceparent) headers[std::string(traceparent_header)] = *traceparent;
  return headers.dump();
}

parsed_event parse_withdrawal_event(std::string_view payload) {
  parsed_event out;
  json document;
  try {
    document = json::parse(payload);
  } catch (const json::parse_error& e) {
    out.error = fmt::format("payload is not valid JSON: {}", e.what());
    return out;
  }
  if (!document.is_object()) {
    out.error = fmt::format("payload must be a JSON object, got a {}", document.type_name());
    return out;
  }
  std::string error;
  out.withdrawal_id = positive_id(document, "withdrawal_id", error);
  if (!out.withdrawal_id) {
    out.error = error;
    return out;
  }
  withdrawal_created event;
  event.withdrawal_id = *out.withdrawal_id;
  const auto user_id = positive_id(document, "user_id", error);
  const auto to_address = text_field(document, "to_address", error);
  if (!user_id || !to_address) {
    out.error = error;
    return out;
  }
  const auto amount = text_field(document, "amount", error);
  const auto chain_name = text_field(document, "chain", error);
  if (!amount || !chain_name) {
    if (const auto it = document.find("amount"); it != document.end() && it->is_number()) {
      error = "amount must be a decimal string such as \"0.5\" (a JSON number loses precision)";
    }
    out.error = error;
    return out;
  }
  if (const auto units = chain::parse_units(*amount, chain::eth_decimals); !units) {
    out.error = units.message;
    return out;
  } else if (units.value == 0) {
    out.error = "amount must be above 0";
    return out;
  }
  if (chain_name->empty()) {
    out.error = "chain must not be empty";
    return out;
  }
  event.user_id = *user_id;
  event.to_address = *to_address;
  event.amount = *amount;
  event.chain = *chain_name;
  out.event = std::move(event);
  return out;
}

std::string describe_mismatch(const withdrawal_created& event, const withdrawal_facts& row) {
  if (event.user_id != row.user_id) {
    return fmt::format("user_id {} of the event differs from the withdrawal's {}", event.user_id, row.user_id);
  }
  if (event.chain != row.chain) {
    return fmt::format("chain \"{}\" of the event differs from the withdrawal's \"{}\"", event.chain, row.chain);
  }
  const auto event_address = chain::address::parse(event.to_address);
  const auto row_address = chain::address::parse(row.to_address);
  const bool same_address =
      (event_address && row_address) ? *event_address == *row_address : event.to_address == row.to_address;
  if (!same_address) {
    return fmt::format("to_address {} of the event differs from the withdrawal's {}", event.to_address, row.to_address);
  }
  const auto event_amount = chain::parse_units(event.amount, chain::eth_decimals);
  const auto row_amount = chain::parse_units(row.amount, chain::eth_decimals);
  if (!event_amount || !row_amount || event_amount.value != row_amount.value) {
    return fmt::format("amount {} of the event differs from the withdrawal's {}", event.amount, row.amount);
  }
  return {};
}

}  // namespace events
