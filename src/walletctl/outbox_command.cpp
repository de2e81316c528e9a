// walletctl outbox status: the backlog, per topic, the dead letters and the relays connected.

#include <fmt/format.h>
#include <pqxx/pqxx>

#include "relay/admin.hpp"
#include "walletctl/commands.hpp"

namespace walletctl {

command outbox_command() {
  return {"outbox", "outbox status   (pending rows, oldest age, per-topic counts, dead letters, held keys, live relays)",
          [](context& ctx, std::span<const std::string> args) {
            if (args.size() != 1 || args[0] != "status") throw usage_error("outbox needs status");
            pqxx::connection connection(common::connection_string(ctx.database));
            const auto s = relay::read_outbox_status(connection);
            ctx.out << fmt::format("schema:        {}\n", s.schema);
            ctx.out << fmt::format("pending:       {} rows ({} retrying after a broker rejection)\n", s.pending,
                                   s.retrying);
            ctx.out << fmt::format("oldest:        {}\n",
                                   s.oldest_age_seconds ? fmt::format("{:.1f}s", *s.oldest_age_seconds) : "-");
            ctx.out << fmt::format("dead letters:  {}\n", s.dead_letters);
            ctx.out << fmt::format("held keys:     {} ({} rows wait behind a dead letter of their key{})\n",
                                   s.held_keys, s.held_rows,
                                   s.oldest_held_seconds ? fmt::format("; oldest held {:.1f}s", *s.oldest_held_seconds)
                                                         : std::string());
            if (!s.topics.empty()) {
              ctx.out << fmt::format("\n{:<40}  {:>10}  {:>10}  {:>12}\n", "TOPIC", "PENDING", "RETRYING",
                                     "DEAD LETTERS");
              for (const auto& t : s.topics) {
                ctx.out << fmt::format("{:<40}  {:>10}  {:>10}  {:>12}\n", t.topic, t.pending, t.retrying,
                                       t.dead_letters);
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
