#pragma once
// Private to the relay loop (service.hpp): the state the loop's three parts share.
//   service.cpp       process plumbing: start-up, the main loop, signals, systemd, /healthz, stop
//   connectivity.cpp  database and broker up/down, stepping aside and back in
//   pipeline.cpp      heartbeat and leases, claim -> publish -> delete, rejections, blocked topics
// Everything here runs on the relay thread, except what is marked as read by the HTTP thread.

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/backoff.hpp"
#include "common/http_server.hpp"
#include "common/daemon.hpp"
#include "relay/config.hpp"
#include "relay/leases.hpp"
#include "relay/metrics.hpp"
#include "relay/publisher.hpp"
#include "relay/service.hpp"
#include "relay/store.hpp"

namespace relay {

using clock_type = std::chrono::steady_clock;

// Longest uninterrupted sleep: bounds how late a stop, a reload or a watchdog ping can be.
inline constexpr std::chrono::milliseconds wait_slice{200};

inline double seconds(clock_type::duration d) { return std::chrono::duration<double>(d).count(); }

struct batch_outcome {
  std::size_t claimed = 0;                     // rows of the last batch
  std::size_t published = 0;                   // rows acknowledged, all batches
  std::optional<std::string> broker_failure;   // a row failed because the broker did not answer
  std::map<std::string, std::string> blocked;  // topic -> reason: the broker refuses the whole topic
  std::map<std::string, std::string> failing;  // topic -> reason: rows failed, the broker did not answer
};

// A batch handed to the broker whose acknowledgements are awaited.
struct sent_batch {
  claimed_batch batch;
  clock_type::time_point claim_started;
  clock_type::time_point claimed_at;  // the claim returned: rows' age_seconds are as of about then
  clock_type::time_point sent_at;
  clock_type::time_point deadline;
  clock_type::duration waited{};  // in collect(): what claiming ahead did not cover
};

// A topic the broker refuses as a whole: its rows are left out of claims until retry_at. Topics
// whose rows failed because the broker did not answer are listed too (retry_at: at once), so that
// relay_publish_blocked and /healthz name them until a row of theirs is acknowledged.
struct blocked_topic {
  std::string reason;
  clock_type::time_point since;
  clock_type::time_point retry_at;
  bool refused = true;  // false: only failing (no answer in time), never left out of claims
};

struct service::impl {
  impl(relay_config c, std::filesystem::path path, common::daemon& d);

  int run();

  // --- connectivity.cpp: state changes (each logs once) ---
  bool connect_database();
  void database_failed(const std::exception& error);
  void broker_unavailable(const std::string& reason);
  void broker_available();
  bool probe_broker();
  void step_aside();
  void step_back_in();
  void keep_sessions_alive();

  // --- pipeline.cpp: the work ---
  void refresh_from_heartbeat(bool& claim_now);
  batch_outcome run_batches();
  claimed_batch claim();
  sent_batch send(claimed_batch batch, clock_type::time_point claim_started, clock_type::time_point claimed_at);
  bool may_claim_ahead();
  void finish(sent_batch& sent, const std::vector<delivery_result>& results, batch_outcome& outcome);
  void handle_rejection(claimed_batch& batch, const outbox_row& row, const delivery_result& result,
                        std::size_t& dead_lettered);
  void topics_blocked(const std::map<std::string, std::string>& blocked);
  void topics_failing(const std::map<std::string, std::string>& failing);
  void topic_flows(const std::string& topic);
  void forget_topic(const std::string& topic);  // no longer reported (gauge 0)
  void forget_failing_topics();                 // the broker answers again
  void publish_blocked_summary();               // blocked -> blocked_summary (for /healthz)
  std::vector<std::string> excluded_topics() const;
  bool wait_for_work();
  bool keep_waiting();

  // --- service.cpp: process plumbing ---
  bool stopping();
  void housekeeping();
  void ping();
  void pause(std::chrono::milliseconds duration);
  void reload();
  std::string status_text() const;
  std::string health_problem() const;
  int shut_down();

  relay_config config;
  std::filesystem::path config_path;
  common::daemon& daemon;
  relay_metrics metrics;
  std::unique_ptr<publisher> broker;
  std::unique_ptr<common::http::server> http;
  std::unique_ptr<store> db;
  lease_set leases;
  common::backoff database_backoff;
  common::backoff broker_backoff;
  common::backoff row_backoff;
  common::backoff topic_backoff;

  // Read by the HTTP thread (/healthz).
  std::atomic<bool> ready{false};
  std::atomic<bool> database_up{false};
  std::atomic<bool> broker_up{false};
  mutable std::mutex blocked_mutex;
  std::string blocked_summary;  // "topic (reason), ...": empty when no topic is blocked

  bool standby = false;  // leases released and session renamed while the broker is unreachable
  std::map<std::string, blocked_topic> blocked;

  std::optional<clock_type::time_point> database_down_since;
  std::optional<clock_type::time_point> broker_down_since;
  std::optional<clock_type::time_point> retry_due;  // earliest next attempt of a rejected row or blocked topic
  clock_type::time_point next_lease_refresh{};
  clock_type::time_point next_gauges{};
  clock_type::time_point next_keep_alive{};

  std::uint64_t published_total = 0;
  std::uint64_t dead_lettered_total = 0;
  std::optional<std::int64_t> pending_rows;
  std::optional<double> oldest_age;
};

}  // namespace relay
