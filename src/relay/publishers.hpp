#pragma once
// Choosing the publisher implementation (publisher.hpp) for a configuration.

#include <memory>

#include "relay/config.hpp"
#include "relay/publisher.hpp"

namespace relay {

/// The publisher for config.mq. Throws common::config_error when the client cannot be set up
/// with the given properties.
std::unique_ptr<publisher> make_publisher(const relay_config& config);

}  // namespace relay
