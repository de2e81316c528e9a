// walletctl outbox status: the backlog, per topic, the dead letters and the relays connected.

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "relay/admin.hpp"
#include "walletctl/commands.hpp"

namespace walletctl {

namespace {

nlohmann::json optional_seconds(const std::optional<double>& seconds) {
  return seconds ? nlohmann::json(*seconds) : nlohmann::json(nullptr);
}

nlohmann::json status_json(const relay::outbox_status& s) {
  auto topics = nlohmann::json::array();
  for (const auto& t : s.topics) {
    topics.push_back(
        {{"topic", t.topic}, {"pending", t.pending}, {"retrying", t.retrying}, {"dead_letters", t.dead_letters}});
  }
  auto relays = nlohmann::json::array();
  for (const auto& r : s.relays) {
    relays.push_back(
        {{"backend_pid", r.pid}, {"client", r.client}, {"partitions", r.partitions}, {"standby", r.standby}});
  }
  return {{"schema", s.schema},
          {"pending", s.pending},
          {"retrying", s.retrying},
          {"oldest_age_seconds", optional_seconds(s.oldest_age_seconds)},
          {"dead_letters", s.dead_letters},
          {"held_keys", s.held_keys},
          {"held_rows", s.held_rows},
          {"oldest_held_seconds", optional_seconds(s.oldest_held_seconds)},
          {"topics", topics},
          {"relays", relays}};
}

}  // namespace

command outbox_command() {
  return {
      "outbox",
      "outbox status [--json]   (pending rows, oldest age, per-topic counts, dead letters, held keys, live relays)",
      [](context& ctx, std::span<const std::string> args) {
        std::vector<std::string> rest(args.begin(), args.end());
        const bool as_json = take_flag(rest, "--json");
        if (rest.size() != 1 || rest[0] != "status") throw usage_error("outbox needs status");
        pqxx::connection connection(common::connection_string(ctx.database));
        const auto s = relay::read_outbox_status(connection);
        if (as_json) {
          ctx.out << status_json(s).dump(2) << "\n";
          return 0;
        }
        ctx.out << fmt::format("schema:        {}\n", s.schema);
        ctx.out << fmt::format("pending:       {} rows ({} retrying after a broker rejection)\n", s.pending,
                               s.retrying);
        ctx.out << fmt::format("oldest:        {}\n",
                               s.oldest_age_seconds ? fmt::format("{:.1f}s", *s.oldest_age_seconds) : "-");
        ctx.out << fmt::format("dead letters:  {}\n", s.dead_letters);
        ctx.out << fmt::format(
            "held keys:     {} ({} rows wait behind a dead letter of their key{})\n", s.held_keys, s.held_rows,
            s.oldest_held_seconds ? fmt::format("; oldest held {:.1f}s", *s.oldest_held_seconds) : std::string());
        if (!s.topics.empty()) {
          ctx.out << fmt::format("\n{:<40}  {:>10}  {:>10}  {:>12}\n", "TOPIC", "PENDING", "RETRYING", "DEAD LETTERS");
          for (const auto& t : s.topics) {
            ctx.out << fmt::format("{:<40}  {:>10}  {:>10}  {:>12}\n", t.topic, t.pending, t.retrying, t.dead_letters);
          }
        }
        ctx.out << fmt::format("\nrelays:        {}\n", s.relays.size());
        for (const auto& r : s.relays) {
          ctx.out << fmt::format("  backend pid {:<8} {:<22} {:>3} of 256 partitions{}\n", r.pid, r.client,
                                 r.partitions, r.standby ? "  (standby: cannot reach its broker)" : "");
        }
        return 0;
      }};
}

}  // namespace walletctl
