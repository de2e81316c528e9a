#pragma once
// Operator views and actions on the outbox (walletctl dead-letters / outbox). They run on a
// connection of the caller's choosing, in the schema its search_path names. Blocking, one
// transaction per call; pqxx exceptions propagate.

#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <pqxx/connection>

namespace relay {

struct dead_letter {
  std::int64_t id = 0;  // the outbox_messages id it had
  std::string topic;
  std::optional<std::string> key;
  std::int64_t payload_bytes = 0;
  int attempts = 0;
  std::string last_error;
  std::string created_at;  // ISO 8601, UTC
  std::string dead_at;
};

/// Dead letters, oldest id first, at most `limit`.
std::vector<dead_letter> list_dead_letters(pqxx::connection& connection, std::size_t limit);

/// Some requested ids are not dead letters; nothing was changed.
class unknown_dead_letters : public std::runtime_error {
 public:
  explicit unknown_dead_letters(std::vector<std::int64_t> ids);
  const std::vector<std::int64_t>& ids() const noexcept { return ids_; }

 private:
  std::vector<std::int64_t> ids_;
};

/// Moves dead letters back into outbox_messages under their original id (attempts 0, no error),
/// all in one transaction: the relays then publish them in id order with their key's other rows.
/// With dead_letter_blocks_key the later rows of the key waited meanwhile, so a requeued row goes
/// first; without it, later rows may already have been published before it.
/// `ids` empty means every dead letter. Returns the ids requeued, ascending.
/// Throws unknown_dead_letters (and changes nothing) when an id is not a dead letter.
std::vector<std::int64_t> requeue_dead_letters(pqxx::connection& connection, std::span<const std::int64_t> ids);

/// Drops dead letters for good (never published): moves them to outbox_discarded_dead_letters
/// (with discarded_at and discarded_by = the database user), in one transaction; their keys'
/// later rows flow again. `ids` must not be empty. Returns the ids discarded, ascending.
/// Throws unknown_dead_letters (and changes nothing) when an id is not a dead letter.
std::vector<std::int64_t> discard_dead_letters(pqxx::connection& connection, std::span<const std::int64_t> ids);

struct topic_backlog {
  std::string topic;
  std::int64_t pending = 0;   // rows in outbox_messages
  std::int64_t retrying = 0;  // of which the broker rejected at least once
  std::int64_t dead_letters = 0;
};

struct relay_session {
  int pid = 0;                  // PostgreSQL backend pid
  std::string client;           // address:port, or "local"
  std::int64_t partitions = 0;  // leases held
  bool standby = false;         // cannot reach its broker: holds no leases until it can
};

struct outbox_status {
  std::string schema;
  std::int64_t pending = 0;  // exact count
  std::optional<double> oldest_age_seconds;
  std::int64_t retrying = 0;
  std::int64_t dead_letters = 0;
  std::int64_t held_keys = 0;                 // keys with a dead letter (held back with dead_letter_blocks_key)
  std::int64_t held_rows = 0;                 // rows of outbox_messages behind a dead letter of their key
  std::optional<double> oldest_held_seconds;  // since the oldest dead letter of a key was written
  std::vector<topic_backlog> topics;
  std::vector<relay_session> relays;  // relays connected to this schema now
};

/// Exact counts (a full scan of outbox_messages: meant for operators, not for polling).
outbox_status read_outbox_status(pqxx::connection& connection);

}  // namespace relay
