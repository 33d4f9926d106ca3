// stream, cancel, show: commands about one run.
#include <unistd.h>

#include <fmt/format.h>
#include <cstdio>
#include <thread>

#include "cli/amlrun/commands.hpp"
#include "cli/amlrun/follow.hpp"
#include "cli/amlrun/metrics_view.hpp"
#include "cli/amlrun/option_checks.hpp"
#include "cli/amlrun/terminal.hpp"
#include "lib/compute/compute_target.hpp"
#include "lib/compute/sweep/sweep_state.hpp"
#include "lib/compute/sweep/sweep_summary.hpp"
#include "lib/compute/sweep/trials.hpp"
#include "lib/spec/job_spec.hpp"
#include "lib/store/metrics.hpp"
#include "lib/store/run_store.hpp"
#include "lib/util/strings.hpp"
#include "lib/util/time.hpp"

namespace amlrun::cli {

namespace {

const std::map<std::string, OutputFormat> k_show_formats = {
    {"text", OutputFormat::text}, {"json", OutputFormat::json}, {"yaml", OutputFormat::yaml}};

// The metrics block of `show`: last, min and max of each metric, and what
// ingestion had to skip.
void print_metrics_summary(const store::RunStore& store, const std::string& run_id) {
  auto summaries = store::metric_summaries(store, run_id);
  auto report = store::ingest_report(store, run_id);
  if (!summaries.empty()) {
    Table table({"METRIC", "LAST", "STEP", "MIN", "MAX", "POINTS"});
    for (std::size_t column = 1; column < 6; ++column) table.right_align(column);
    table.flexible(0);
    auto optional = [](const std::optional<double>& value) {
      return value ? short_metric_value(*value) : std::string("-");
    };
    for (const auto& s : summaries) {
      table.add({s.name, short_metric_value(s.last_value), std::to_string(s.last_step),
                 optional(s.min), optional(s.max),
                 s.non_finite ? fmt::format("{} ({} NaN/Inf)", s.count, s.non_finite)
                              : std::to_string(s.count)});
    }
    std::printf("metrics\n%s",
                table.render(static_cast<std::size_t>(terminal_width(1)), 2).c_str());
  }
  if (report.skipped() > 0) {
    std::printf("%-16s %s\n", "metrics skipped",
                util::escape_control(skipped_text(report)).c_str());
  }
}

// A sweep's search and its trials, best first.
void print_sweep(const store::RunStore& store, const store::RunRecord& r) {
  auto settings = compute::sweep_settings_of(store, r);
  auto seed = compute::sweep_state_from_json(r.target).seed;
  for (const auto& [label, text] : compute::describe_settings(settings, seed)) {
    std::printf("%-16s %s\n", label.c_str(), util::escape_control(text).c_str());
  }
  auto summary = compute::summarize_sweep(store, r);
  std::string counts;
  for (const auto& [state, count] : summary.counts) {
    counts += fmt::format("{}{} {}", counts.empty() ? "" : ", ", count, state);
  }
  std::printf("%-16s %zu (%s)\n", "trials", summary.trials.size(),
              counts.empty() ? "none yet" : counts.c_str());
  if (summary.best) {
    const auto& best = summary.trials[*summary.best];
    std::printf("%-16s %s (%s %s)\n", "best trial", best.id.c_str(),
                util::escape_control(settings.primary_metric).c_str(),
                store::format_metric_value(*best.objective).c_str());
  }
  if (summary.trials.empty()) return;
  Table table(
      {"TRIAL", "STATE", util::escape_control(settings.primary_metric), "PARAMS", "REASON"});
  table.right_align(0);
  table.right_align(2);
  table.flexible(4);
  for (const auto& trial : summary.trials) {
    table.add({std::to_string(trial.k), trial.state,
               trial.objective ? short_metric_value(*trial.objective) : "-",
               util::escape_control(compute::describe_values(trial.params)),
               util::escape_control(trial.reason)});
  }
  std::printf("%s", table.render(static_cast<std::size_t>(terminal_width(1)), 2).c_str());
}

store::RunRecord refreshed(store::RunStore& store, const std::string& id) {
  auto record = store.load(id);
  auto target = compute::target_of(store.workspace(), record);
  return target->refresh(store, record);
}

void print_text(const store::RunStore& store, const store::RunRecord& r) {
  // Stored text (display name, tags, reasons, paths) is shown with its
  // control characters escaped: a job file must not command the terminal.
  auto line = [](const char* key, const std::string& value) {
    if (!value.empty()) std::printf("%-16s %s\n", key, util::escape_control(value).c_str());
  };
  line("run", r.id);
  line("experiment", r.experiment);
  line("display name", r.display_name);
  line("state", store::to_string(r.state));
  line("exit code", r.exit_code ? std::to_string(*r.exit_code) : "");
  line("failure reason", r.failure_reason);
  line("created", r.created_at);
  line("started", r.started_at);
  line("ended", r.ended_at);
  line("duration", util::format_duration(r.duration_seconds()));
  line("compute", fmt::format("{} ({})", r.compute, r.compute_type));
  for (const auto& [label, text] : compute::target_of(store.workspace(), r)->describe(r)) {
    line(label.c_str(), text);
  }
  line("processes", fmt::format("{} on {} node{} ({})", r.process_count, r.instance_count,
                                r.instance_count == 1 ? "" : "s", r.distribution));
  if (!r.snapshot_id.empty()) {
    line("snapshot",
         fmt::format("{} ({} file{}, {})", r.snapshot_id, r.snapshot_files,
                     r.snapshot_files == 1 ? "" : "s", util::format_bytes(r.snapshot_bytes)));
  }
  std::string environment = fmt::format("{} ({}", r.environment_hash, r.environment_mode);
  if (const auto& prepared = r.prepared_environment) {
    environment += prepared->cache_hit
                       ? ", cached"
                       : fmt::format(", built in {}", util::format_duration(prepared->seconds));
  }
  line("environment", environment + ")");
  std::string tags;
  for (const auto& [k, v] : r.tags) tags += (tags.empty() ? "" : ", ") + k + "=" + v;
  line("tags", tags);
  std::string params;
  for (const auto& [k, v] : r.params) params += (params.empty() ? "" : ", ") + k + "=" + v;
  line("params", params);
  for (const auto& [id, name] : r.models) {
    line("model", fmt::format("{} ({}) in outputs/models/{}/", id, name, id));
  }
  line("parent run", r.parent_id);
  store::RunFilter children;
  children.parent = r.id;
  children.limit = 0;
  // A sweep's children are its trials, in the table below.
  if (r.kind != store::RunKind::sweep) {
    for (const auto& child : store.list(children)) {
      line("child run", fmt::format("{} ({}{})", child.id, child.state,
                                    child.display_name.empty() ? "" : ", " + child.display_name));
    }
  }
  for (const auto& warning : r.warnings) line("warning", warning);
  auto dir = store.run_dir(r.id);
  line("outputs", (dir / "artifacts" / "outputs").string());
  line("logs", (dir / "artifacts" / "logs").string());
  print_metrics_summary(store, r.id);
  if (r.kind == store::RunKind::sweep) print_sweep(store, r);
}

}  // namespace

void add_stream(CLI::App& app, GlobalOptions& global, Handler& handler) {
  auto id = std::make_shared<std::string>();
  auto all_ranks = std::make_shared<bool>(false);
  auto quiet = std::make_shared<bool>(false);
  app.add_option("ID", *id, "The run id (or a unique prefix)")->required();
  app.add_flag("--all-ranks", *all_ranks, "Stream every rank's log, prefixed [rank N]");
  auto all_trials = std::make_shared<bool>(false);
  app.add_flag("--all-trials", *all_trials,
               "A sweep: also every trial's log, prefixed [trial K] (the sweep's lines [sweep])");
  app.add_flag("--quiet,-q", *quiet,
               "No progress lines of amlrun's own; the run's log, warnings and its ending only");
  handler = [id, all_ranks, all_trials, quiet, &global]() {
    auto workspace = workspace::open_workspace(workspace_options(global, false));
    store::RunStore store(workspace);
    std::string run_id = store.resolve(*id);
    return follow_run(store, run_id,
                      FollowOptions{*all_ranks, OutputFormat::text, *quiet, *all_trials});
  };
}

void add_cancel(CLI::App& app, GlobalOptions& global, Handler& handler) {
  auto id = std::make_shared<std::string>();
  app.add_option("ID", *id, "The run id (or a unique prefix)")->required();
  handler = [id, &global]() {
    auto workspace = workspace::open_workspace(workspace_options(global, false));
    store::RunStore store(workspace);
    std::string run_id = store.resolve(*id);
    auto record = refreshed(store, run_id);
    if (record.state == store::RunState::canceled) {
      std::fprintf(stderr, "amlrun: %s was already canceled\n", run_id.c_str());
      return ExitCode::ok;
    }
    if (store::is_terminal(record.state)) {
      throw util::InputError(fmt::format("{} already ended ({}); there is nothing to cancel",
                                         run_id, store::to_string(record.state)));
    }
    auto target = compute::target_of(workspace, record);
    target->request_cancel(store, record);
    // Wait for the end the cancel causes: a grace period for SIGTERM, then
    // SIGKILL, then finalizing.
    auto deadline = util::monotonic_ms() + (workspace.config().kill_grace_seconds + 30) * 1000LL;
    while (!store::is_terminal(record.state) && util::monotonic_ms() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      record = target->refresh(store, store.load(run_id));
    }
    if (!store::is_terminal(record.state)) {
      throw util::InfraError(fmt::format("{} did not end after the cancel request; it is {}",
                                         run_id, store::to_string(record.state)));
    }
    std::fprintf(
        stderr, "amlrun: %s %s%s\n", run_id.c_str(), store::to_string(record.state).c_str(),
        record.state == store::RunState::canceled ? ""
                                                  : " (it ended before the cancel took effect)");
    return ExitCode::ok;
  };
}

void add_show(CLI::App& app, GlobalOptions& global, Handler& handler) {
  auto id = std::make_shared<std::string>();
  auto output = std::make_shared<OutputFormat>(OutputFormat::text);
  app.add_option("ID", *id, "The run id (or a unique prefix)")->required();
  add_choice_option(app, "--output", *output, k_show_formats, "text, json or yaml");
  handler = [id, output, &global]() {
    auto workspace = workspace::open_workspace(workspace_options(global, false));
    store::RunStore store(workspace);
    auto record = refreshed(store, store.resolve(*id));
    if (*output == OutputFormat::json) {
      std::printf("%s\n", run_json(store, record).dump(2).c_str());
    } else if (*output == OutputFormat::yaml) {
      std::printf("%s", spec::json_to_yaml(run_json(store, record)).c_str());
    } else {
      print_text(store, record);
    }
    return ExitCode::ok;
  };
}

}  // namespace amlrun::cli
