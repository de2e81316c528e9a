#include "wallet/request.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <limits>
#include <set>
#include <stdexcept>
#include <vector>

#include <cryptopp/hex.h>
#include <cryptopp/sha.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "chain/address.hpp"
#include "chain/units.hpp"

namespace wallet {

namespace {

using json = nlohmann::json;

constexpr unsigned balance_decimals = 18;  // scale of accounts.balance

api_error bad_request(std::string code, std::string message) {
  return api_error{400, std::move(code), std::move(message)};
}

const char* type_name(const json& value) {
  switch (value.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "an integer";
    case json::value_t::number_float:
      return "a fractional number";
    case json::value_t::string:
      return "a string";
    case json::value_t::array:
      return "an array";
    case json::value_t::object:
      return "an object";
    default:
      return "an unsupported value";
  }
}

// Parses `body` as one JSON object. Duplicate keys are refused: with them, which of the two values
// counts would depend on the parser, and a reviewer and the service could read different amounts.
parsed<json> parse_object(std::string_view body, std::string_view example) {
  std::vector<std::set<std::string>> keys_per_object;
  std::optional<std::string> duplicate;
  auto callback = [&](int, json::parse_event_t event, json& value) {
    if (event == json::parse_event_t::object_start) {
      keys_per_object.emplace_back();
    } else if (event == json::parse_event_t::object_end) {
      if (!keys_per_object.empty()) keys_per_object.pop_back();
    } else if (event == json::parse_event_t::key && !keys_per_object.empty()) {
      auto name = value.get<std::string>();
      if (!keys_per_object.back().insert(name).second && !duplicate) duplicate = std::move(name);
    }
    return true;
  };
  json document;
  try {
    document = json::parse(body.begin(), body.end(), callback);
  } catch (const json::parse_error& e) {
    return bad_request("invalid_json", fmt::format("request body is not valid JSON (byte {}): send a JSON object "
                                                   "such as {}",
                                                   e.byte, example));
  }
  if (duplicate) {
    return bad_request("invalid_json",
                       fmt::format("field \"{}\" appears more than once: send each field once", *duplicate));
  }
  if (!document.is_object()) {
    return bad_request("invalid_json", fmt::format("request body must be a JSON object such as {}, got {}", example,
                                                   type_name(document)));
  }
  return document;
}

// Exactly `fields`, each present once: unknown ones first (the likelier typo), then missing ones.
std::optional<api_error> check_fields(const json& object, std::initializer_list<std::string_view> fields,
                                      std::string_view what) {
  for (const auto& [name, value] : object.items()) {
    if (std::find(fields.begin(), fields.end(), name) == fields.end()) {
      return bad_request("unknown_field",
                         fmt::format("unknown field \"{}\": {} takes only {}", name, what, fmt::join(fields, ", ")));
    }
  }
  for (const auto field : fields) {
    if (!object.contains(field)) {
      return bad_request("missing_field",
                         fmt::format("missing field \"{}\": {} needs {}", field, what, fmt::join(fields, ", ")));
    }
  }
  return std::nullopt;
}

// Amounts must be JSON strings: a JSON number goes through binary floating point in most
// clients, and 0.1 + 0.2 is not 0.3 there.
parsed<std::string> amount_text(const json& value) {
  if (value.is_number()) {
    return bad_request("invalid_type",
                       "amount must be a decimal string such as \"1.25\", not a JSON number: "
                       "numbers lose precision in transit; quote the amount");
  }
  if (!value.is_string()) {
    return bad_request("invalid_type",
                       fmt::format("amount must be a decimal string such as \"1.25\", got {}", type_name(value)));
  }
  return value.get<std::string>();
}

parsed<std::string> check_amount(std::string_view text, unsigned decimals, const chain::uint256& maximum) {
  auto units = chain::parse_units(text, decimals, maximum);
  if (!units) return bad_request("invalid_amount", units.message);
  if (units.value == 0) return bad_request("invalid_amount", "amount must be greater than zero");
  return chain::format_units(units.value, decimals);
}

std::string sha256_hex(std::string_view data) {
  CryptoPP::SHA256 hash;
  std::array<CryptoPP::byte, CryptoPP::SHA256::DIGESTSIZE> digest{};
  hash.CalculateDigest(digest.data(), reinterpret_cast<const CryptoPP::byte*>(data.data()), data.size());
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(digest.size() * 2);
  for (const auto b : digest) {
    out += digits[b >> 4];
    out += digits[b & 0x0f];
  }
  return out;
}

bool is_lower_hex(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace

parsed<withdrawal_fields> parse_withdrawal_json(std::string_view body) {
  static constexpr std::string_view example =
      R"({"user_id": 42, "to_address": "0x…", "amount": "1.25", "chain": "eth"})";
  auto document = parse_object(body, example);
  if (auto* error = std::get_if<api_error>(&document)) return std::move(*error);
  const auto& object = std::get<json>(document);
  if (auto error = check_fields(object, {"user_id", "to_address", "amount", "chain"}, "a withdrawal")) return *error;

  withdrawal_fields fields;
  const auto& user_id = object.at("user_id");
  if (user_id.is_number_unsigned()) {
    const auto value = user_id.get<std::uint64_t>();
    if (value > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return bad_request("invalid_type", fmt::format("user_id must be a positive integer up to {}, got {}",
                                                     std::numeric_limits<std::int64_t>::max(), value));
    }
    fields.user_id = static_cast<std::int64_t>(value);
  } else if (user_id.is_number_integer()) {
    fields.user_id = user_id.get<std::int64_t>();
  } else {
    return bad_request("invalid_type", fmt::format("user_id must be a positive integer such as 42, got {}",
                                                   user_id.is_number() ? user_id.dump() : type_name(user_id)));
  }

  const auto& chain_value = object.at("chain");
  if (!chain_value.is_string()) {
    return bad_request("invalid_type",
                       fmt::format("chain must be a string such as \"eth\", got {}", type_name(chain_value)));
  }
  fields.chain = chain_value.get<std::string>();

  const auto& address_value = object.at("to_address");
  if (!address_value.is_string()) {
    return bad_request("invalid_type", fmt::format("to_address must be a string such as \"0x…\" (40 hex digits), "
                                                   "got {}",
                                                   type_name(address_value)));
  }
  fields.to_address = address_value.get<std::string>();

  auto amount = amount_text(object.at("amount"));
  if (auto* error = std::get_if<api_error>(&amount)) return std::move(*error);
  fields.amount = std::move(std::get<std::string>(amount));
  return fields;
}

parsed<withdrawal_request> validate_withdrawal(const withdrawal_fields& fields, const chain_map& chains) {
  withdrawal_request request;
  if (fields.user_id <= 0) {
    return bad_request("invalid_type",
                       fmt::format("user_id must be a positive integer such as 42, got {}", fields.user_id));
  }
  request.user_id = fields.user_id;

  const auto rules = chains.find(fields.chain);
  if (rules == chains.end()) {
    std::vector<std::string> known;
    for (const auto& [name, r] : chains) known.push_back(name);
    return bad_request("unknown_chain", fmt::format("chain \"{}\" is not supported; use one of: {}", fields.chain,
                                                    fmt::join(known, ", ")));
  }
  request.chain = fields.chain;

  request.to_address = fields.to_address;
  std::string address_error;
  const auto address = chain::address::parse(request.to_address, &address_error, "to_address");
  if (!address) return bad_request("invalid_address", address_error);
  if (address->is_zero()) {
    return bad_request("invalid_address", "to_address must not be the zero address: funds sent there are lost");
  }

  auto amount = check_amount(fields.amount, rules->second.decimals, rules->second.max_amount);
  if (auto* error = std::get_if<api_error>(&amount)) return std::move(*error);
  request.amount = std::move(std::get<std::string>(amount));
  return request;
}

parsed<withdrawal_request> parse_withdrawal_request(std::string_view body, const chain_map& chains) {
  auto fields = parse_withdrawal_json(body);
  if (auto* error = std::get_if<api_error>(&fields)) return std::move(*error);
  return validate_withdrawal(std::get<withdrawal_fields>(fields), chains);
}

parsed<std::string> parse_deposit_json(std::string_view body) {
  auto document = parse_object(body, R"({"amount": "10"})");
  if (auto* error = std::get_if<api_error>(&document)) return std::move(*error);
  const auto& object = std::get<json>(document);
  if (auto error = check_fields(object, {"amount"}, "a deposit")) return *error;
  return amount_text(object.at("amount"));
}

parsed<std::string> validate_deposit_amount(std::string_view amount) {
  return check_amount(amount, balance_decimals, std::numeric_limits<chain::uint256>::max());
}

parsed<std::string> parse_deposit_request(std::string_view body) {
  auto text = parse_deposit_json(body);
  if (auto* error = std::get_if<api_error>(&text)) return std::move(*error);
  return validate_deposit_amount(std::get<std::string>(text));
}

std::string deposit_digest(std::int64_t user_id, const std::string& canonical_amount) {
  const json canonical = {{"user_id", user_id}, {"amount", canonical_amount}};
  return sha256_hex(canonical.dump());
}

std::string request_digest(const withdrawal_request& request) {
  // json objects sort their keys: one canonical text per request, with strings escaped.
  const json canonical = {{"user_id", request.user_id},
                          {"to_address", request.to_address},
                          {"amount", request.amount},
                          {"chain", request.chain}};
  return sha256_hex(canonical.dump());
}

std::optional<api_error> check_idempotency_key(std::string_view key) {
  const bool visible = std::all_of(key.begin(), key.end(), [](char c) { return c >= 0x21 && c <= 0x7e; });
  if (key.empty() || key.size() > 255 || !visible) {
    return bad_request("invalid_idempotency_key",
                       "Idempotency-Key must be 1..255 visible ASCII characters, "
                       "e.g. a UUID");
  }
  return std::nullopt;
}

std::optional<std::string> valid_traceparent(std::string_view header) {
  // version "-" trace-id "-" parent-id "-" flags; later versions may append "-..." fields.
  if (header.size() < 55 || header[2] != '-' || header[35] != '-' || header[52] != '-') return std::nullopt;
  const auto version = header.substr(0, 2);
  const auto trace_id = header.substr(3, 32);
  const auto parent_id = header.substr(36, 16);
  const auto flags = header.substr(53, 2);
  if (!is_lower_hex(version) || !is_lower_hex(trace_id) || !is_lower_hex(parent_id) || !is_lower_hex(flags)) {
    return std::nullopt;
  }
  if (version == "ff") return std::nullopt;
  if (version == "00" && header.size() != 55) return std::nullopt;
  if (version != "00" && header.size() > 55 && header[55] != '-') return std::nullopt;
  if (trace_id == std::string(32, '0') || parent_id == std::string(16, '0')) return std::nullopt;
  return std::string(header);
}

bool is_json_content_type(std::string_view content_type) {
  auto media = content_type.substr(0, content_type.find(';'));
  while (!media.empty() && std::isspace(static_cast<unsigned char>(media.back()))) media.remove_suffix(1);
  while (!media.empty() && std::isspace(static_cast<unsigned char>(media.front()))) media.remove_prefix(1);
  static constexpr std::string_view expected = "application/json";
  return media.size() == expected.size() &&
         std::equal(media.begin(), media.end(), expected.begin(),
                    [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == b; });
}

std::optional<std::int64_t> parse_positive_id(std::string_view segment) {
  if (segment.empty() || segment.size() > 19 || segment.front() == '0') return std::nullopt;
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(segment.data(), segment.data() + segment.size(), value);
  if (ec != std::errc{} || end != segment.data() + segment.size() || value <= 0) return std::nullopt;
  return value;
}

std::string canonical_decimal(std::string_view numeric_text) {
  // Text, not chain::parse_units: a balance may exceed 2^256 base units (numeric(78, 18) goes to
  // 10^60), and trimming zeros of PostgreSQL's own output needs no arithmetic.
  const auto point = numeric_text.find('.');
  auto whole = numeric_text.substr(0, point);
  auto fraction = point == std::string_view::npos ? std::string_view() : numeric_text.substr(point + 1);
  auto digits = [](std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (whole.empty() || !digits(whole) || !digits(fraction) || (point != std::string_view::npos && fraction.empty()) ||
      fraction.size() > balance_decimals) {
    throw std::invalid_argument("not a non-negative numeric(78, 18) value: \"" + std::string(numeric_text) + "\"");
  }
  while (whole.size() > 1 && whole.front() == '0') whole.remove_prefix(1);
  while (!fraction.empty() && fraction.back() == '0') fraction.remove_suffix(1);
  std::string out(whole);
  if (!fraction.empty()) out.append(".").append(fraction);
  return out;
}

}  // namespace wallet
