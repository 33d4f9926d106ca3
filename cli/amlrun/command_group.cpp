// Command groups (amlrun runs ..., amlrun model ...): a missing or mistyped
// sub-command gets the same "did you mean" as a top-level one.
#include <fmt/format.h>

#include "cli/amlrun/commands.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::cli {

Handler group_handler(CLI::App& app, const std::string& group,
                      std::vector<std::pair<CLI::App*, Handler>> commands) {
  // CLI11 would answer a mistyped sub-command with a generic message; a
  // hidden positional takes the word instead, so we can explain. (Extras
  // would not do: unknown words fall through to the top level, so that
  // --workspace may come after a command.)
  app.require_subcommand(0, 1);
  auto words = std::make_shared<std::vector<std::string>>();
  app.add_option("WORD", *words)->group("");
  return [words, group, commands]() {
    for (const auto& [sub, handler] : commands) {
      if (sub->parsed()) return handler();
    }
    std::vector<std::string> names;
    for (const auto& [sub, handler] : commands) names.push_back(sub->get_name());
    const auto& extras = *words;
    if (extras.empty()) {
      throw util::InputError(fmt::format("amlrun {} needs a command: {} (see 'amlrun {} --help')",
                                         group, util::join(names, ", "), group));
    }
    throw util::InputError(
        fmt::format("unknown command 'amlrun {} {}'{}; the {} commands are {}", group, extras[0],
                    util::did_you_mean_suffix(extras[0], names), group, util::join(names, ", ")));
  };
}

}  // namespace amlrun::cli
