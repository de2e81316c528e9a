#include "http_client.hpp"

#include <optional>
#include <regex>
#include <stdexcept>

#include <fmt/format.h>

namespace test_support {

std::uint16_t wait_for_port(child_process& daemon, std::string_view scheme, std::chrono::milliseconds timeout) {
  const std::regex listening(fmt::format(R"(listening on {}://\S+:(\d+))", scheme));
  std::optional<std::uint16_t> port;
  wait_until(
      [&] {
        std::smatch match;
        const std::string log = daemon.log();
        if (std::regex_search(log, match, listening)) port = static_cast<std::uint16_t>(std::stoul(match[1].str()));
        return port.has_value() || !daemon.running();
      },
      timeout);
  if (!port) {
    throw std::runtime_error(fmt::format("no \"listening on {}://…\" line from pid {} within {} ms; log:\n{}", scheme,
                                         daemon.pid(), timeout.count(), daemon.log()));
  }
  return *port;
}

std::uint16_t wait_for_http_port(child_process& daemon, std::chrono::milliseconds timeout) {
  return wait_for_port(daemon, "http", timeout);
}

}  // namespace test_support
