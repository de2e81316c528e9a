#pragma once
// Prometheus metrics (prometheus-cpp core) and the operations endpoint every daemon serves.

#include <functional>
#include <memory>
#include <string>

#include <optional>

#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "common/http_server.hpp"

namespace common {

/// The Prometheus text exposition of everything in `registry`.
std::string render_metrics(prometheus::Registry& registry);

/// Latency buckets in seconds from 0.5 ms to 30 s, shared by all latency histograms.
const prometheus::Histogram::BucketBoundaries& latency_buckets();

/// Serves GET /metrics from `registry` and GET /healthz from `healthy` (200 "ok" or 503 with the
/// reason it returns), and 404 for anything else. `healthy` returns an empty string when healthy.
http::handler operations_handler(std::shared_ptr<prometheus::Registry> registry,
                                 std::function<std::string()> health_problem);

/// Handles /metrics and /healthz; returns std::nullopt for other paths so callers can chain.
std::optional<http::response> handle_operations(const http::request& request, prometheus::Registry& registry,
                                                const std::function<std::string()>& health_problem);

}  // namespace common
