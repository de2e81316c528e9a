#include "common/metrics.hpp"

#include <optional>

#include <prometheus/text_serializer.h>

namespace common {

std::string render_metrics(prometheus::Registry& registry) {
  return prometheus::TextSerializer().Serialize(registry.Collect());
}

const prometheus::Histogram::BucketBoundaries& latency_buckets() {
  static const prometheus::Histogram::BucketBoundaries buckets = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                                  0.25,   0.5,   1,     2.5,   5,    10,    30};
  return buckets;
}

std::optional<http::response> handle_operations(const http::request& request, prometheus::Registry& registry,
                                                const std::function<std::string()>& health_problem) {
  const auto path = request.path();
  if (path == "/metrics" && request.method == "GET") {
    return http::response{200, "text/plain; version=0.0.4; charset=utf-8", render_metrics(registry), {}};
  }
  if (path == "/healthz" && request.method == "GET") {
    const std::string problem = health_problem();
    if (problem.empty()) return http::response{200, "application/json", R"({"status":"ok"})", {}};
    return http::error_response(503, "unhealthy", problem);
  }
  return std::nullopt;
}

http::handler operations_handler(std::shared_ptr<prometheus::Registry> registry,
                                 std::function<std::string()> health_problem) {
  return [registry = std::move(registry), health_problem = std::move(health_problem)](const http::request& request) {
    if (auto res = handle_operations(request, *registry, health_problem)) return *res;
    return http::error_response(404, "not_found", "no such route: " + request.path());
  };
}

}  // namespace common
