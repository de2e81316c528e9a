// outbox-relay: publishes the rows of outbox_messages to Kafka or Redis Streams and deletes each
// row once the broker acknowledged it. See service.hpp for the loop and config.hpp for the keys.
//
//   outbox-relay --config /etc/wallet-outbox/relay.toml [--check-config]

#include <iostream>
#include <string_view>
#include <variant>

#include <spdlog/spdlog.h>

#include "common/command_line.hpp"
#include "common/config.hpp"
#include "common/logging.hpp"
#include "common/daemon.hpp"
#include "relay/config.hpp"
#include "relay/service.hpp"

namespace {

constexpr std::string_view usage =
    "usage: outbox-relay --config FILE [--check-config]\n"
    "  --config FILE    TOML configuration (keys and RELAY_* overrides: conf/relay.toml)\n"
    "  --check-config   validate the configuration and exit (0 valid, 2 invalid)\n";

}  // namespace

int main(int argc, char** argv) {
  common::daemon daemon;  // first: every later thread inherits its signal mask (and SIGPIPE is ignored)

  const auto parsed = common::parse_daemon_arguments("outbox-relay", usage, argc, argv);
  if (const auto* exit_code = std::get_if<int>(&parsed)) return *exit_code;
  const auto& args = std::get<common::daemon_arguments>(parsed);

  relay::relay_config config;
  try {
    config = relay::load_config(args.config_path);
  } catch (const common::config_error& e) {
    std::cerr << "outbox-relay: " << e.what() << "\n";
    return common::exit_config_error;
  }
  if (args.check_only) {
    std::cout << "outbox-relay: configuration " << args.config_path << " is valid\n";
    return 0;
  }

  common::init_logging("outbox-relay", config.log_level);
  try {
    relay::service service(std::move(config), args.config_path, daemon);
    return service.run();
  } catch (const std::exception& e) {
    spdlog::critical("outbox-relay failed: {}", e.what());
    return 1;
  }
}
