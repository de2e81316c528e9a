#include "broadcaster/withdrawal_status.hpp"

#include <array>
#include <stdexcept>
#include <string>
#include <utility>

namespace broadcaster {
namespace {

constexpr std::array<std::pair<withdrawal_status, std::string_view>, 5> names{{
    {withdrawal_status::pending, "pending"},
    {withdrawal_status::signed_, "signed"},
    {withdrawal_status::broadcast, "broadcast"},
    {withdrawal_status::confirmed, "confirmed"},
    {withdrawal_status::failed, "failed"},
}};

}  // namespace

std::string_view to_sql(withdrawal_status status) noexcept {
  for (const auto& [value, text] : names) {
    if (value == status) return text;
  }
  return "unknown";
}

withdrawal_status parse_withdrawal_status(std::string_view text) {
  for (const auto& [value, name] : names) {
    if (name == text) return value;
  }
  throw std::invalid_argument("unknown withdrawal status \"" + std::string(text) + "\"");
}

}  // namespace broadcaster
