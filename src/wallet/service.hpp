#pragma once
// wallet-service's parts wired together, so that main() only parses, loads, wires and runs:
// the connection pool, the store, the health probe, the shared operations and both front ends
// (HTTP JSON and gRPC), with one Prometheus registry served on the HTTP /metrics.
//
// Thread-safety: start(), stop() and health_problem() from the supervising thread; set_tokens()
// from any thread. Requests are served on the front ends' own threads.

#include <chrono>
#include <memory>
#include <string>

#include "wallet/auth.hpp"
#include "wallet/config.hpp"

namespace wallet {

/// Everything the configuration file (and environment) says, the tokens included.
struct settings {
  service_config config;
  /// null: auth.disabled and no tokens configured.
  std::shared_ptr<const token_set> tokens;
};

/// Reads `path` with WALLET_* overrides, rejects unknown keys and loads the tokens. Throws
/// common::config_error naming the key or file and the fix.
settings load_settings(const std::string& path);

class service {
 public:
  /// Builds every part; connects to nothing yet (the pool connects on first use). Keeps a copy of
  /// `s.config`.
  explicit service(settings s);
  ~service();  // stop(0) if still running
  service(const service&) = delete;
  service& operator=(const service&) = delete;

  /// Binds the HTTP and (when grpc.enabled) the gRPC listener, each logging "listening on
  /// <scheme>://<address>:<port>". Throws std::runtime_error / std::system_error naming the address
  /// when one cannot listen.
  void start();
  /// "" while the database answers; the reason otherwise. Blocks up to the connect timeout plus
  /// the statement timeout.
  std::string health_problem();
  /// Replaces the accepted tokens (SIGHUP). nullptr turns authentication off.
  void set_tokens(std::shared_ptr<const token_set> tokens);
  /// One line for the startup log: where it connects, what is on, how many tokens.
  std::string describe() const;
  /// One line for systemd's STATUS=: the bound ports and the pool's use.
  std::string status() const;
  /// Graceful stop of both listeners at once: no new requests or calls, the ones in flight get
  /// until `timeout` from now, then they are cut. Blocks until both are down. Idempotent.
  void stop(std::chrono::milliseconds timeout);

 private:
  struct parts;
  std::unique_ptr<parts> parts_;
};

}  // namespace wallet
