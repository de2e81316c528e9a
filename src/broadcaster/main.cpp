// broadcaster-worker --config <file> [--check-config]
// Consumes WithdrawalCreated events, signs and broadcasts the withdrawals, tracks confirmations.
// Exit codes: 0 clean stop (or valid config with --check-config), 1 fatal error, 2 bad
// configuration or usage.

#include <iostream>
#include <string_view>
#include <variant>

#include <spdlog/spdlog.h>

#include "broadcaster/settings.hpp"
#include "broadcaster/worker.hpp"
#include "common/command_line.hpp"
#include "common/config.hpp"
#include "common/logging.hpp"
#include "common/daemon.hpp"

namespace {
constexpr std::string_view usage = "usage: broadcaster-worker --config <file.toml> [--check-config]\n";
}

int main(int argc, char** argv) {
  common::daemon daemon;  // first: every thread started later inherits its signal mask

  const auto parsed = common::parse_daemon_arguments("broadcaster-worker", usage, argc, argv);
  if (const auto* exit_code = std::get_if<int>(&parsed)) return *exit_code;
  const auto& args = std::get<common::daemon_arguments>(parsed);

  try {
    auto reader = common::config_reader::from_file(args.config_path, "BROADCASTER");
    const broadcaster::settings config = broadcaster::parse_settings(reader);
    const chain::private_key key = broadcaster::load_signing_key();
    broadcaster::forget_signing_key_environment();  // before any thread starts
    if (args.check_only) {
      std::cout << "broadcaster-worker: " << args.config_path << " is valid (hot wallet "
                << key.address().to_checksum_string() << ")\n";
      return 0;
    }
    common::init_logging("broadcaster-worker", config.log_level);
    return broadcaster::run_worker(args.config_path, config, key, daemon);
  } catch (const common::config_error& e) {
    std::cerr << "broadcaster-worker: " << e.what() << "\n";
    return common::exit_config_error;
  } catch (const std::exception& e) {
    std::cerr << "broadcaster-worker: " << e.what() << "\n";
    spdlog::critical("{}", e.what());
    return 1;
  }
}
