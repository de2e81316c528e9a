#pragma once
// source.mode = "db-poll": the seed's polling baseline. Every poll_interval, claims pending
// withdrawals one at a time with SELECT … FOR UPDATE SKIP LOCKED (so several workers share the
// work) and runs the same processing as the event sources, until none is left.
// Not thread-safe: run() runs on one thread.

#include <memory>

#include "broadcaster/event_source.hpp"
#include "broadcaster/health.hpp"
#include "broadcaster/processor.hpp"
#include "broadcaster/settings.hpp"
#include "common/signals.hpp"

namespace broadcaster {

std::unique_ptr<event_source> make_db_poll_source(const settings& config, processor& worker, health& status,
                                                  common::process_signals& signals);

}  // namespace broadcaster
