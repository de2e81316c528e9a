#include <fmt/format.h>
#include <fmt/ranges.h>
#include <pqxx/pqxx>

#include "common/migrate.hpp"
#include "walletctl/commands.hpp"

namespace walletctl {

command migrate_command() {
  return {"migrate",
          "migrate [--migrations DIR] up [N] | down [N] | status | force VERSION   (folder: DIR, else "
          "$OUTBOX_MIGRATIONS_DIR, else <prefix>/share/wallet-outbox/migrations next to walletctl)",
          [](context& ctx, std::span<const std::string> args) {
            std::optional<std::filesystem::path> dir;
            if (!args.empty() && args[0] == "--migrations") {
              if (args.size() < 2) throw usage_error("--migrations needs a folder");
              dir = args[1];
              args = args.subspan(2);
            }
            if (args.empty()) throw usage_error("migrate needs up, down, status or force");
            const auto folder = common::default_migrations_dir(dir);
            pqxx::connection connection(common::connection_string(ctx.database));
            common::migrator migrator(connection, folder);
            const std::string& action = args[0];
            if (action == "up" || action == "down") {
              if (args.size() > 2) throw usage_error("too many arguments");
              const auto steps = args.size() == 2 ? std::optional(parse_count(args[1], "N")) : std::nullopt;
              // `down` without N reverts one migration: reverting everything must be asked for by number.
              const auto done = action == "up" ? migrator.up(steps) : migrator.down(steps.value_or(1));
              ctx.out << fmt::format("{} {} migration(s){}{}\n", action == "up" ? "applied" : "reverted", done.size(),
                                     done.empty() ? "" : ": ", fmt::join(done, ", "));
              return 0;
            }
            if (action == "status") {
              const auto state = migrator.state();
              ctx.out << fmt::format("version: {}{}\n", state.version ? std::to_string(*state.version) : "none",
                                     state.dirty ? " (dirty)" : "");
              for (const auto& m : migrator.available()) {
                const bool applied = state.version && m.version <= *state.version;
                ctx.out << fmt::format("  {:06} {:<30} {}\n", m.version, m.name, applied ? "applied" : "pending");
              }
              return 0;
            }
            if (action == "force") {
              if (args.size() != 2) throw usage_error("force needs VERSION (-1 for none)");
              migrator.force(std::stoll(args[1]));
              ctx.out << "forced version " << args[1] << "\n";
              return 0;
            }
            throw usage_error("unknown migrate action \"" + action + "\"");
          }};
}

}  // namespace walletctl
