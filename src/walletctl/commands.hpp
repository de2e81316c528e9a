#pragma once
// walletctl's subcommands. Each lives in its own file and is listed in all_commands().

#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/database.hpp"

namespace walletctl {

/// Wrong arguments: main prints the command's usage and exits 2.
class usage_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct context {
  common::database_config database;
  std::ostream& out;
};

struct command {
  std::string name;
  std::string usage;
  std::function<int(context&, std::span<const std::string>)> run;
};

/// DATABASE_URL (or --database-url) and the password secret.
common::database_config database_from(const std::optional<std::string>& url_flag);

/// Parses a positive count argument; throws usage_error naming it.
std::size_t parse_count(const std::string& text, const char* what);

/// Parses an ID argument (a positive 64-bit integer); throws usage_error saying what it is, e.g.
/// "ID must be a positive whole number (a withdrawal id), got \"x\"".
std::int64_t parse_id(const std::string& text, std::string_view what);

/// Removes every occurrence of `flag` (e.g. "--json") from `args`; true when there was one.
bool take_flag(std::vector<std::string>& args, std::string_view flag);

command migrate_command();
command dead_letters_command();
command outbox_command();
command withdrawals_command();

/// `withdrawals list` and `withdrawals show` (withdrawals_inspect.cpp), dispatched by withdrawals_command().
int withdrawals_list(context& ctx, std::span<const std::string> args);
int withdrawals_show(context& ctx, std::span<const std::string> args);

const std::vector<command>& all_commands();

}  // namespace walletctl
