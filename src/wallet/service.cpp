#include "wallet/service.hpp"

#include <thread>

#include <fmt/format.h>
#include <prometheus/registry.h>

#include "common/database.hpp"
#include "common/http_server.hpp"
#include "wallet/api.hpp"
#include "wallet/grpc_api.hpp"
#include "wallet/operations.hpp"
#include "wallet/store.hpp"

namespace wallet {

settings load_settings(const std::string& path) {
  auto reader = common::config_reader::from_file(path, "WALLET");
  settings out{parse_config(reader), nullptr};
  out.tokens = load_tokens(out.config.tokens_file, out.config.auth_disabled);
  return out;
}

// Members in dependency order: each part outlives the parts built after it.
struct service::parts {
  explicit parts(settings s)
      : config(std::move(s.config)),
        tokens_at_start(s.tokens ? s.tokens->size() : 0),
        pool(config.database, config.pool_size, config.acquire_timeout, store::session_setup(config.statement_timeout)),
        wallet_store(pool, config.max_attempts),
        health(config.database, config.statement_timeout),
        registry(std::make_shared<prometheus::Registry>()),
        ops(config, wallet_store, std::move(s.tokens), *registry),
        http_api(ops, pool, health, registry),
        http(config.http, [this](const common::http::request& request) { return http_api.handle(request); }),
        grpc(config.grpc, ops, health, *registry) {}

  const service_config config;
  const std::size_t tokens_at_start;
  common::connection_pool pool;
  store wallet_store;
  health_probe health;
  std::shared_ptr<prometheus::Registry> registry;
  operations ops;
  api http_api;
  common::http::server http;
  grpc_api grpc;
  bool started = false;
};

service::service(settings s) : parts_(std::make_unique<parts>(std::move(s))) {}

service::~service() { stop(std::chrono::milliseconds(0)); }

void service::start() {
  parts_->http.start();
  if (parts_->config.grpc.enabled) parts_->grpc.start();
  parts_->started = true;
}

std::string service::health_problem() { return parts_->health.problem(); }

void service::set_tokens(std::shared_ptr<const token_set> tokens) { parts_->ops.set_tokens(std::move(tokens)); }

std::string service::describe() const {
  const auto& c = parts_->config;
  return fmt::format(
      "database {}, pool {} connections, {} HTTP threads, gRPC {}, deposits {}, idempotency keys {}, "
      "authentication {}",
      common::redacted_url(c.database.url), c.pool_size, c.http.threads, c.grpc.enabled ? "on" : "off",
      c.enable_deposits ? "on" : "off", c.require_idempotency_key ? "required" : "optional",
      parts_->tokens_at_start > 0 ? fmt::format("on ({} tokens)", parts_->tokens_at_start)
                                  : std::string("off (auth.disabled)"));
}

std::string service::status() const {
  const auto grpc = parts_->config.grpc.enabled ? fmt::format("gRPC port {}", parts_->grpc.port()) : "gRPC off";
  return fmt::format("serving: HTTP port {}, {}, database connections in use {} of {}", parts_->http.port(), grpc,
                     parts_->pool.in_use(), parts_->pool.size());
}

void service::stop(std::chrono::milliseconds timeout) {
  if (!parts_->started) return;
  parts_->started = false;
  // Both listeners close at once and share the deadline.
  std::thread grpc_stop([&] { parts_->grpc.stop(timeout); });
  parts_->http.drain(timeout);
  grpc_stop.join();
}

}  // namespace wallet
