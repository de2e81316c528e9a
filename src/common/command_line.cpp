#include "common/command_line.hpp"

#include <iostream>

#include "common/config.hpp"

namespace common {

std::variant<daemon_arguments, int> parse_daemon_arguments(std::string_view program, std::string_view usage, int argc,
                                                           const char* const* argv) {
  constexpr std::string_view config_equals = "--config=";
  daemon_arguments out;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--config" && i + 1 < argc) {
      out.config_path = argv[++i];
    } else if (arg.starts_with(config_equals)) {
      out.config_path = std::string(arg.substr(config_equals.size()));
    } else if (arg == "--check-config") {
      out.check_only = true;
    } else if (arg == "--help" || arg == "-h") {
      std::cout << usage;
      return 0;
    } else {
      std::cerr << program << ": unknown argument \"" << arg << "\"\n" << usage;
      return exit_config_error;
    }
  }
  if (out.config_path.empty()) {
    std::cerr << program << ": --config FILE is required\n" << usage;
    return exit_config_error;
  }
  return out;
}

}  // namespace common
