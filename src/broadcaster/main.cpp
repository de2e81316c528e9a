// broadcaster-worker --config <file> [--check-config]
// Consumes WithdrawalCreated events, signs and broadcasts the withdrawals, tracks confirmations.
// Exit codes: 0 clean stop (or valid config with --check-config), 1 fatal error, 2 bad
// configuration or usage.

#include <iostream>
#include <optional>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

#include "broadcaster/settings.hpp"
#include "broadcaster/worker.hpp"
#include "common/config.hpp"
#include "common/logging.hpp"
#include "common/signals.hpp"

namespace {
constexpr std::string_view usage = "usage: broadcaster-worker --config <file.toml> [--check-config]\n";
}

int main(int argc, char** argv) {
  common::process_signals signals;  // first: every thread started later inherits the signal mask

  std::optional<std::string> config_path;
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (arg.rfind("--config=", 0) == 0) {
      config_path = std::string(arg.substr(9));
    } else if (arg == "--check-config") {
      check_only = true;
    } else if (arg == "--help" || arg == "-h") {
      std::cout << usage;
      return 0;
    } else {
      std::cerr << "broadcaster-worker: unknown argument \"" << arg << "\"\n" << usage;
      return common::exit_config_error;
    }
  }
  if (!config_path) {
    std::cerr << "broadcaster-worker: --config is required\n" << usage;
    return common::exit_config_error;
  }

  try {
    auto reader = common::config_reader::from_file(*config_path, "BROADCASTER");
    const broadcaster::settings config = broadcaster::parse_settings(reader);
    reader.reject_unknown_keys();
    const chain::private_key key = broadcaster::load_signing_key();
    if (check_only) {
      std::cout << "broadcaster-worker: " << *config_path << " is valid (hot wallet "
                << key.address().to_checksum_string() << ")\n";
      return 0;
    }
    common::init_logging("broadcaster-worker", config.log_level);
    return broadcaster::run_worker(*config_path, config, key, signals);
  } catch (const common::config_error& e) {
    std::cerr << "broadcaster-worker: " << e.what() << "\n";
    return common::exit_config_error;
  } catch (const std::exception& e) {
    std::cerr << "broadcaster-worker: " << e.what() << "\n";
    spdlog::critical("{}", e.what());
    return 1;
  }
}
