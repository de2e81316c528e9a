#pragma once
// The integration suites' HTTP client is the daemons' own (common/http_client.hpp: one deadline
// per request, keep-alive reuse, a request is never re-sent), plus waiting for a daemon's port.

#include <chrono>
#include <cstdint>
#include <string_view>

#include "common/http_client.hpp"
#include "test_support.hpp"

namespace test_support {

using http_client = common::http::client;
using http_response = common::http::client_response;

/// Waits until the daemon logged "listening on <scheme>://<address>:<port>" (scheme "http",
/// "grpc") and returns the port. Throws std::runtime_error with the log when it does not within
/// `timeout` or the process exits.
std::uint16_t wait_for_port(child_process& daemon, std::string_view scheme,
                            std::chrono::milliseconds timeout = std::chrono::seconds(30));

/// Waits until the daemon logged "listening on http://<address>:<port>" and returns the port.
/// Throws std::runtime_error with the log when it does not within `timeout` or the process exits.
std::uint16_t wait_for_http_port(child_process& daemon, std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace test_support
