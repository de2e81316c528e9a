#pragma once
// Wires broadcaster-worker together and runs it until SIGTERM: operations server (/metrics,
// /healthz), database pool, readiness checks (database, node, broker) before READY=1, the event
// source on one thread, the confirmation tracker on another, and on the calling thread the
// supervisor (systemd watchdog pings while every loop is alive, STATUS=, SIGHUP reloads the log
// level from `config_path`).

#include <filesystem>

#include "broadcaster/settings.hpp"
#include "chain/signer.hpp"
#include "common/daemon.hpp"

namespace broadcaster {

/// Blocks until a stop is requested (or a fatal error). Returns the process exit code:
/// 0 after a clean stop, 1 after a fatal error, 2 when the node contradicts the configuration
/// (chain.chain_id). Logging must be initialised.
int run_worker(const std::filesystem::path& config_path, const settings& config, const chain::private_key& key,
               common::daemon& daemon);

}  // namespace broadcaster
