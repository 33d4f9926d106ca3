// runs list, runs tag: finding runs and labelling them.
#include <fmt/format.h>
#include <cstdio>

#include "cli/amlrun/commands.hpp"
#include "cli/amlrun/option_checks.hpp"
#include "cli/amlrun/terminal.hpp"
#include "lib/compute/compute_target.hpp"
#include "lib/store/run_listing.hpp"
#include "lib/store/run_store.hpp"
#include "lib/util/strings.hpp"
#include "lib/util/tags.hpp"
#include "lib/util/time.hpp"

namespace amlrun::cli {

namespace {

enum class ListFormat { table, json };

const std::vector<std::string> k_states = {"Queued",     "Preparing", "Starting", "Running",
                                           "Finalizing", "Completed", "Failed",   "Canceled"};

store::RunState parse_state(const std::string& text) {
  for (const auto& name : k_states) {
    if (text.size() == name.size() &&
        std::equal(text.begin(), text.end(), name.begin(),
                   [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
      return *store::run_state_from_string(name);
    }
  }
  throw util::InputError(fmt::format("unknown status '{}'{}; use one of {}", text,
                                     util::did_you_mean_suffix(text, k_states),
                                     util::join(k_states, ", ")));
}

double row_duration(const store::IndexRow& row) {
  if (row.created_at.empty()) return 0;
  auto start = util::parse_utc_iso8601(row.created_at);
  auto end = row.ended_at.empty() ? util::Clock::now() : util::parse_utc_iso8601(row.ended_at);
  return std::chrono::duration<double>(end - start).count();
}

std::string tags_text(const std::vector<std::pair<std::string, std::string>>& tags) {
  std::vector<std::string> parts;
  for (const auto& [key, value] : tags) parts.push_back(key + "=" + value);
  return util::join(parts, ", ");
}

void print_runs_table(const std::vector<store::IndexRow>& rows) {
  Table table({"RUN", "STATUS", "DURATION", "EXIT", "TAGS"});
  table.right_align(2);
  table.right_align(3);
  // Tags give way first; a run id is only cut on a very narrow terminal.
  table.flexible(4);
  for (const auto& row : rows) {
    bool known = row.problem.empty();
    table.add({row.id, row.state, known ? util::format_duration(row_duration(row)) : "",
               row.exit_code ? std::to_string(*row.exit_code) : "", tags_text(row.tags)});
  }
  std::size_t width = static_cast<std::size_t>(terminal_width(1));
  std::string text = table.render(width);
  // If tags alone cannot make room, the id column is cut as well.
  std::size_t longest = 0;
  for (const auto& line : util::split(text, '\n')) longest = std::max(longest, display_width(line));
  if (longest > width) {
    Table narrow({"RUN", "STATUS", "DURATION", "EXIT"});
    narrow.right_align(2);
    narrow.right_align(3);
    narrow.flexible(0);
    for (const auto& row : rows) {
      narrow.add({row.id, row.state,
                  row.problem.empty() ? util::format_duration(row_duration(row)) : "",
                  row.exit_code ? std::to_string(*row.exit_code) : ""});
    }
    text = narrow.render(width);
  }
  std::fputs(text.c_str(), stdout);
}

nlohmann::ordered_json row_json(const store::IndexRow& row) {
  nlohmann::ordered_json j;
  j["id"] = row.id;
  j["experiment"] = row.experiment;
  j["display_name"] = row.display_name;
  j["status"] = row.state;
  j["created_at"] = row.created_at;
  j["ended_at"] = row.ended_at;
  j["duration_seconds"] = row.problem.empty() ? nlohmann::ordered_json(row_duration(row))
                                              : nlohmann::ordered_json(nullptr);
  j["exit_code"] =
      row.exit_code ? nlohmann::ordered_json(*row.exit_code) : nlohmann::ordered_json(nullptr);
  j["compute"] = row.compute;
  j["tags"] = util::tags_to_json(row.tags);
  if (!row.parent_id.empty()) j["parent_id"] = row.parent_id;
  if (!row.problem.empty()) j["problem"] = row.problem;
  return j;
}

Handler runs_list(CLI::App& app, GlobalOptions& global) {
  struct Options {
    std::string experiment;
    std::string status;
    std::vector<std::string> tags;
    std::vector<std::string> params;
    std::string parent;
    int limit = 50;
    ListFormat output = ListFormat::table;
  };
  auto options = std::make_shared<Options>();
  app.add_option("--experiment", options->experiment, "Only runs of this experiment")
      ->check(not_blank());
  app.add_option("--status", options->status, "Only runs in this state (Completed, Failed, ...)")
      ->check(not_blank());
  app.add_option("--tag", options->tags, "Only runs with this tag, key=value (repeatable)");
  app.add_option("--param", options->params,
                 "Only runs with this param, name=value, or name for any value (repeatable)");
  app.add_option("--parent", options->parent,
                 "Only child runs of this run (nested MLflow runs; an id or a unique prefix)")
      ->check(not_blank());
  app.add_option("--limit", options->limit,
                 "At most this many runs, newest first (default 50; 0: all)");
  const std::map<std::string, ListFormat> formats = {{"table", ListFormat::table},
                                                     {"json", ListFormat::json}};
  add_choice_option(app, "--output", options->output, formats, "table (default) or json");
  return [options, &global]() {
    store::RunFilter filter;
    filter.experiment = options->experiment;
    if (!options->status.empty()) filter.state = parse_state(options->status);
    for (const auto& tag : options->tags) filter.tags.push_back(util::parse_tag(tag));
    for (const auto& param : options->params) {
      filter.params.push_back(store::parse_param_filter(param));
    }
    if (options->limit < 0) {
      throw util::InputError(
          fmt::format("--limit {}: give a number of runs, or 0 for all", options->limit));
    }
    // One more than shown, to tell whether the limit hid any.
    filter.limit = options->limit > 0 ? options->limit + 1 : 0;
    auto workspace = workspace::open_workspace(workspace_options(global, false));
    store::RunStore store(workspace);
    if (!options->parent.empty()) filter.parent = store.resolve(options->parent);
    if (!filter.params.empty()) store.index_params_of_older_runs();
    auto rows = store.list(filter);
    bool more = options->limit > 0 && rows.size() > static_cast<std::size_t>(options->limit);
    if (more) rows.pop_back();
    store::check_listed_runs(store, rows);
    // Unfinished runs as their targets see them now (one squeue for all the
    // Slurm runs), not as they were when someone last looked.
    std::vector<std::string> unfinished;
    for (const auto& row : rows) {
      auto state = store::run_state_from_string(row.state);
      if (row.problem.empty() && state && !store::is_terminal(*state)) unfinished.push_back(row.id);
    }
    if (!unfinished.empty()) {
      std::map<std::string, store::RunRecord> now;
      for (auto& record : compute::refresh_runs(store, unfinished)) now[record.id] = record;
      for (auto& row : rows) {
        auto it = now.find(row.id);
        if (it == now.end()) continue;
        row.state = store::to_string(it->second.state);
        row.ended_at = it->second.ended_at;
        row.exit_code = it->second.exit_code;
      }
    }
    if (options->output == ListFormat::json) {
      nlohmann::ordered_json list = nlohmann::ordered_json::array();
      for (const auto& row : rows) list.push_back(row_json(row));
      std::printf("%s\n", list.dump(2).c_str());
    } else if (rows.empty()) {
      std::fprintf(
          stderr, "amlrun: no runs%s\n",
          filter.experiment.empty() && !filter.state && filter.tags.empty() && filter.params.empty()
              ? fmt::format(" in {}", workspace.root().string()).c_str()
              : " match");
    } else {
      print_runs_table(rows);
    }
    for (const auto& row : rows) {
      if (!row.problem.empty()) {
        std::fprintf(stderr, "amlrun: warning: run %s: %s (amlrun doctor checks the workspace)\n",
                     row.id.c_str(), util::escape_control(row.problem).c_str());
      }
    }
    if (more && options->output == ListFormat::table) {
      std::fprintf(stderr, "amlrun: showing the newest %d runs; --limit N shows more\n",
                   options->limit);
    }
    return ExitCode::ok;
  };
}

Handler runs_tag(CLI::App& app, GlobalOptions& global) {
  struct Options {
    std::string id;
    std::vector<std::string> tags;
    std::vector<std::string> remove;
  };
  auto options = std::make_shared<Options>();
  app.add_option("ID", options->id, "The run id (or a unique prefix)")->required();
  app.add_option("TAGS", options->tags, "key=value pairs to set");
  app.add_option("--remove", options->remove, "Remove the tag with this key (repeatable)");
  return [options, &global]() {
    std::vector<util::Tag> set;
    for (const auto& tag : options->tags) set.push_back(util::parse_tag(tag));
    for (const auto& key : options->remove) util::check_tag_key(key);
    if (set.empty() && options->remove.empty()) {
      throw util::InputError("runs tag: give key=value pairs to set, or --remove KEY");
    }
    auto workspace = workspace::open_workspace(workspace_options(global, false));
    store::RunStore store(workspace);
    auto record = store.update_tags(store.resolve(options->id), set, options->remove);
    std::printf("%s\n", util::escape_control(tags_text(record.tags)).c_str());
    return ExitCode::ok;
  };
}

}  // namespace

void add_runs(CLI::App& app, GlobalOptions& global, Handler& handler) {
  std::vector<std::pair<CLI::App*, Handler>> commands;
  commands.emplace_back(app.add_subcommand("list", "List runs, newest first"), nullptr);
  commands.back().second = runs_list(*commands.back().first, global);
  commands.emplace_back(app.add_subcommand("tag", "Set or remove tags of a run"), nullptr);
  commands.back().second = runs_tag(*commands.back().first, global);
  handler = group_handler(app, "runs", commands);
}

}  // namespace amlrun::cli
