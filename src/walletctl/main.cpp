// walletctl: the operator's tool. Subcommands:
//   walletctl migrate up [N] | down [N] | status | force VERSION
//   walletctl dead-letters ... (see commands.hpp: one file per command)
// Database: --database-url URL, else $DATABASE_URL; password from DATABASE_PASSWORD(_FILE).

#include <iostream>
#include <span>
#include <string>
#include <vector>

#include "walletctl/commands.hpp"

namespace {

void print_usage(std::ostream& out) {
  out << "usage: walletctl [--database-url URL] <command> [args]\n\ncommands:\n";
  for (const auto& command : walletctl::all_commands()) out << "  " << command.usage << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::optional<std::string> database_url;
  if (args.size() >= 2 && args[0] == "--database-url") {
    database_url = args[1];
    args.erase(args.begin(), args.begin() + 2);
  }
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    print_usage(args.empty() ? std::cerr : std::cout);
    return args.empty() ? 2 : 0;
  }
  for (const auto& command : walletctl::all_commands()) {
    if (command.name != args[0]) continue;
    try {
      walletctl::context context{walletctl::database_from(database_url), std::cout};
      return command.run(context, std::span(args).subspan(1));
    } catch (const walletctl::usage_error& e) {
      std::cerr << "walletctl: " << e.what() << "\nusage: " << command.usage << "\n";
      return 2;
    } catch (const std::exception& e) {
      std::cerr << "walletctl: " << e.what() << "\n";
      return 1;
    }
  }
  std::cerr << "walletctl: unknown command \"" << args[0] << "\"\n";
  print_usage(std::cerr);
  return 2;
}
