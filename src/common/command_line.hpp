#pragma once
// The command line every daemon takes: `<program> --config FILE [--check-config]`.

#include <string>
#include <string_view>
#include <variant>

namespace common {

struct daemon_arguments {
  std::string config_path;
  bool check_only = false;  // --check-config: validate the configuration and exit
};

/// Parses `--config FILE` (or `--config=FILE`), `--check-config` and `--help`/`-h`.
/// Returns the arguments, or the exit code main() should return at once: 0 after printing the
/// usage for --help, exit_config_error (2) after printing what is wrong and the usage to stderr.
/// `usage` is the text printed, ending in a newline.
std::variant<daemon_arguments, int> parse_daemon_arguments(std::string_view program, std::string_view usage, int argc,
                                                           const char* const* argv);

}  // namespace common
