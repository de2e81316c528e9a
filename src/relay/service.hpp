#pragma once
// The relay loop: claim -> publish -> delete, one batch at a time, on one thread.
//
//   refresh leases when due -> claim a batch (one transaction) -> publish every row and wait for
//   every acknowledgement (deadline) -> delete exactly the acknowledged rows, record rejections,
//   dead-letter rows out of attempts -> commit -> next batch at once if this one was full,
//   otherwise wait for a NOTIFY or the poll interval.
//
// Failures never end the loop: broker or database trouble switches to a backoff-and-probe state
// (one log line when it starts, one when it ends) and rows stay in the table. A stop request
// (SIGTERM/SIGINT) ends claiming, lets the batch in flight finish within shutdown_timeout, flushes
// the producer and closes the database session (releasing every lock). SIGHUP re-reads the config
// file: log.level, outbox.batch_size and outbox.poll_interval take effect.
// systemd: READY=1 once the database and the broker answered, STATUS= about once a second,
// WATCHDOG=1 at half of WatchdogSec from the loop itself (a stuck loop stops pinging),
// RELOADING=1/READY=1 around a reload, STOPPING=1 on stop.

#include <filesystem>
#include <memory>

#include "common/daemon.hpp"
#include "relay/config.hpp"

namespace relay {

class service {
 public:
  /// `config_path` is re-read on SIGHUP. `daemon` (signals, systemd) must outlive the service.
  service(relay_config config, std::filesystem::path config_path, common::daemon& daemon);
  ~service();
  service(const service&) = delete;
  service& operator=(const service&) = delete;

  /// Runs until a stop is requested. Returns the process exit code: 0 after a graceful stop,
  /// 1 when the operations endpoint cannot bind, 2 when the broker client rejects its configuration.
  int run();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace relay
