// outbox-relay: publishes the rows of outbox_messages to Kafka or Redis Streams and deletes each
// row once the broker acknowledged it. See service.hpp for the loop and config.hpp for the keys.
//
//   outbox-relay --config /etc/wallet-outbox/relay.toml [--check-config]

#include <csignal>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

#include "common/config.hpp"
#include "common/logging.hpp"
#include "common/signals.hpp"
#include "relay/config.hpp"
#include "relay/service.hpp"

namespace {

constexpr std::string_view usage =
    "usage: outbox-relay --config FILE [--check-config]\n"
    "  --config FILE    TOML configuration (keys and RELAY_* overrides: conf/relay.toml)\n"
    "  --check-config   validate the configuration and exit (0 valid, 2 invalid)\n";

}  // namespace

int main(int argc, char** argv) {
  common::process_signals signals;  // first: every later thread inherits the blocked signal mask
  std::signal(SIGPIPE, SIG_IGN);    // a peer closing a socket must be an error code, not a kill

  std::optional<std::string> config_path;
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (arg == "--check-config") {
      check_only = true;
    } else if (arg == "--help" || arg == "-h") {
      std::cout << usage;
      return 0;
    } else {
      std::cerr << "outbox-relay: unknown argument \"" << arg << "\"\n" << usage;
      return common::exit_config_error;
    }
  }
  if (!config_path) {
    std::cerr << "outbox-relay: --config FILE is required\n" << usage;
    return common::exit_config_error;
  }

  relay::relay_config config;
  try {
    config = relay::load_config(*config_path);
  } catch (const common::config_error& e) {
    std::cerr << "outbox-relay: " << e.what() << "\n";
    return common::exit_config_error;
  }
  if (check_only) {
    std::cout << "outbox-relay: configuration " << *config_path << " is valid\n";
    return 0;
  }

  common::init_logging("outbox-relay", config.log_level);
  try {
    relay::service service(std::move(config), *config_path, signals);
    return service.run();
  } catch (const std::exception& e) {
    spdlog::critical("outbox-relay failed: {}", e.what());
    return 1;
  }
}
