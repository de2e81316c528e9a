// walletctl dead-letters list [--limit N] | requeue ID... | requeue --all | discard ID...

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "relay/admin.hpp"
#include "walletctl/commands.hpp"

namespace walletctl {

namespace {

int list(context& ctx, std::span<const std::string> arguments) {
  std::vector<std::string> args(arguments.begin(), arguments.end());
  const bool as_json = take_flag(args, "--json");
  std::size_t limit = 100;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--limit" && i + 1 < args.size()) {
      limit = parse_count(args[++i], "--limit");
    } else {
      throw usage_error("unknown list argument \"" + args[i] + "\"");
    }
  }
  pqxx::connection connection(common::connection_string(ctx.database));
  const auto letters = relay::list_dead_letters(connection, limit);
  if (as_json) {
    auto out = nlohmann::json::array();
    for (const auto& d : letters) {
      out.push_back({{"id", d.id},
                     {"topic", d.topic},
                     {"key", d.key ? nlohmann::json(*d.key) : nlohmann::json(nullptr)},
                     {"payload_bytes", d.payload_bytes},
                     {"attempts", d.attempts},
                     {"last_error", d.last_error},
                     {"created_at", d.created_at},
                     {"dead_at", d.dead_at}});
    }
    ctx.out << out.dump(2) << "\n";
    return 0;
  }
  if (letters.empty()) {
    ctx.out << "no dead letters\n";
    return 0;
  }
  ctx.out << fmt::format("{:>12}  {:<24}  {:<20}  {:>9}  {:>8}  {:<24}  {}\n", "ID", "DEAD AT", "TOPIC", "BYTES",
                         "ATTEMPTS", "KEY", "LAST ERROR");
  for (const auto& d : letters) {
    ctx.out << fmt::format("{:>12}  {:<24}  {:<20}  {:>9}  {:>8}  {:<24}  {}\n", d.id, d.dead_at, d.topic,
                           d.payload_bytes, d.attempts, d.key.value_or("-"), d.last_error);
  }
  if (letters.size() == limit) ctx.out << fmt::format("(first {}; --limit N shows more)\n", limit);
  return 0;
}

int requeue(context& ctx, std::span<const std::string> args) {
  if (args.empty()) throw usage_error("requeue needs ID... or --all");
  std::vector<std::int64_t> ids;
  const bool all = args.size() == 1 && args[0] == "--all";
  if (!all) {
    for (const auto& a : args) {
      if (a == "--all") throw usage_error("--all cannot be combined with ids");
      ids.push_back(parse_id(a, "an outbox id from `dead-letters list`"));
    }
  }
  pqxx::connection connection(common::connection_string(ctx.database));
  // An unknown id throws relay::unknown_dead_letters: main prints it and exits 1, nothing changed.
  const auto requeued = relay::requeue_dead_letters(connection, ids);
  ctx.out << fmt::format("requeued {} dead letter(s){}{}\n", requeued.size(), requeued.empty() ? "" : ": ",
                         fmt::join(requeued, ", "));
  return 0;
}

// Discarding drops messages for good: the ids are named one by one (no --all), and each one
// lands in outbox_discarded_dead_letters with who discarded it and when.
int discard(context& ctx, std::span<const std::string> args) {
  if (args.empty()) throw usage_error("discard needs ID... (each dead letter named; there is no --all)");
  std::vector<std::int64_t> ids;
  for (const auto& a : args) ids.push_back(parse_id(a, "an outbox id from `dead-letters list`"));
  pqxx::connection connection(common::connection_string(ctx.database));
  const auto discarded = relay::discard_dead_letters(connection, ids);
  ctx.out << fmt::format(
      "discarded {} dead letter(s) for good: {} (recorded in outbox_discarded_dead_letters; "
      "later rows of their keys flow again)\n",
      discarded.size(), fmt::join(discarded, ", "));
  return 0;
}

}  // namespace

command dead_letters_command() {
  return {"dead-letters",
          "dead-letters list [--limit N] [--json] | requeue ID... | requeue --all | discard ID...   (rows the broker "
          "rejected max_attempts times; requeue puts them back in outbox_messages ahead of their key's later rows, "
          "discard drops them for good, recorded in outbox_discarded_dead_letters)",
          [](context& ctx, std::span<const std::string> args) {
            if (args.empty()) throw usage_error("dead-letters needs list, requeue or discard");
            if (args[0] == "list") return list(ctx, args.subspan(1));
            if (args[0] == "requeue") return requeue(ctx, args.subspan(1));
            if (args[0] == "discard") return discard(ctx, args.subspan(1));
            throw usage_error("unknown dead-letters action \"" + args[0] + "\"");
          }};
}

}  // namespace walletctl
