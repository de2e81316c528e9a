#include "walletctl/commands.hpp"

#include <charconv>

namespace walletctl {

common::database_config database_from(const std::optional<std::string>& url_flag) {
  auto reader = common::config_reader::from_string("", "WALLETCTL");
  auto config = common::parse_database_config(reader, "walletctl");
  if (url_flag) config.url = *url_flag;
  return config;
}

std::size_t parse_count(const std::string& text, const char* what) {
  std::size_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || ptr != text.data() + text.size() || value == 0) {
    throw usage_error(std::string(what) + " must be a positive whole number, got \"" + text + "\"");
  }
  return value;
}

std::int64_t parse_id(const std::string& text, std::string_view what) {
  std::int64_t id = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc{} || end != text.data() + text.size() || id <= 0) {
    throw usage_error("ID must be a positive whole number (" + std::string(what) + "), got \"" + text + "\"");
  }
  return id;
}

bool take_flag(std::vector<std::string>& args, std::string_view flag) {
  const auto before = args.size();
  std::erase(args, flag);
  return args.size() != before;
}

const std::vector<command>& all_commands() {
  static const std::vector<command> commands = {migrate_command(), dead_letters_command(), outbox_command(),
                                                withdrawals_command()};
  return commands;
}

}  // namespace walletctl
