#include "relay/publishers.hpp"

#include "relay/kafka_publisher.hpp"
#include "relay/redis_publisher.hpp"

namespace relay {

std::unique_ptr<publisher> make_publisher(const relay_config& config) {
  if (config.mq == common::mq_type::redis) return std::make_unique<redis_publisher>(config);
  return std::make_unique<kafka_publisher>(config);
}

}  // namespace relay
