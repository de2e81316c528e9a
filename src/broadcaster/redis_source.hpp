#pragma once
// The Redis Streams consumer-group source (mq.type = "redis").
//
// Stream consumer.topic, group consumer.group (created with XGROUP CREATE … 0 MKSTREAM so entries
// added before the group existed are not missed), consumer redis.consumer (default
// "<hostname>-<pid>"). Entries carry the fields outbox-id, key, payload (the event JSON) and
// headers (a JSON object).
// - On (re)connect, the consumer's own pending entries (XREADGROUP … 0) are processed first.
// - Then XREADGROUP … > with BLOCK redis.block; XACK only after process_withdrawal() finished.
// - Every claim_idle/2, XAUTOCLAIM takes over entries idle longer than redis.claim_idle (their
//   consumer died) and processes them; consumers with nothing pending and idle for ten times
//   claim_idle are removed from the group.
// - Bad events: XADD to consumer.dlq_topic (the entry's fields + error + original-id) and XACK in
//   one MULTI/EXEC.
// Not thread-safe: run() runs on one thread.

#include <memory>

#include "broadcaster/event_source.hpp"
#include "broadcaster/health.hpp"
#include "broadcaster/metrics.hpp"
#include "broadcaster/processor.hpp"
#include "broadcaster/settings.hpp"
#include "common/signals.hpp"

namespace broadcaster {

std::unique_ptr<event_source> make_redis_source(const settings& config, processor& worker, metrics& counters,
                                                health& status, common::process_signals& signals);

}  // namespace broadcaster
