#include <unistd.h>

#include <fmt/format.h>
#include <cstdio>

#include "cli/amlrun/commands.hpp"
#include "cli/amlrun/follow.hpp"
#include "cli/amlrun/option_checks.hpp"
#include "cli/amlrun/terminal.hpp"
#include "lib/store/run_store.hpp"
#include "lib/submit/submit.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::cli {

workspace::OpenOptions workspace_options(const GlobalOptions& global, bool create_if_missing) {
  workspace::OpenOptions options;
  if (global.workspace) {
    options.explicit_root = *global.workspace;
  } else if (const char* variable = ::getenv("AMLRUN_WORKSPACE"); variable && *variable) {
    options.explicit_root = variable;
  }
  options.start_dir = std::filesystem::current_path();
  options.create_if_missing = create_if_missing;
  options.notice = [](const std::string& text) {
    std::fprintf(stderr, "amlrun: %s\n", text.c_str());
  };
  return options;
}

static const std::map<std::string, OutputFormat> k_formats = {{"text", OutputFormat::text},
                                                              {"json", OutputFormat::json}};

void add_submit(CLI::App& app, GlobalOptions& global, Handler& handler) {
  struct Options {
    std::string file;
    bool stream = false;
    bool no_wait = false;
    bool all_ranks = false;
    bool all_trials = false;
    bool quiet = false;
    std::vector<std::string> overrides;
    std::optional<std::string> compute;
    std::optional<std::string> experiment;
    OutputFormat output = OutputFormat::text;
  };
  auto options = std::make_shared<Options>();
  app.add_option("FILE", options->file, "The job file (YAML)")->required();
  auto* stream =
      app.add_flag("--stream", options->stream, "Stream the logs until the run ends (the default)");
  app.add_flag("--no-wait", options->no_wait, "Return once the run is submitted; print its id")
      ->excludes(stream);
  app.add_flag("--all-ranks", options->all_ranks, "Stream every rank's log, prefixed [rank N]");
  app.add_flag("--all-trials", options->all_trials,
               "A sweep: also every trial's log, prefixed [trial K] (the sweep's lines [sweep])");
  app.add_flag("--quiet,-q", options->quiet,
               "No progress lines of amlrun's own; the run's log, warnings and its ending only");
  app.add_option("--set", options->overrides, "Override a field: key.path=value (repeatable)");
  app.add_option("--compute", options->compute,
                 "The compute target (default: the job's, else local)")
      ->check(not_blank());
  app.add_option("--experiment", options->experiment, "The experiment name")->check(not_blank());
  add_choice_option(app, "--output", options->output, k_formats,
                    "text or json (json: stdout holds only the result)");
  handler = [options, &global]() {
    submit::SubmitRequest request;
    request.spec_file = options->file;
    request.overrides = options->overrides;
    request.compute = options->compute;
    request.experiment = options->experiment;
    request.workspace = workspace_options(global, /*create_if_missing=*/true);
    request.notice = [](const std::string& text) {
      std::fprintf(stderr, "amlrun: %s\n", text.c_str());
    };
    if (options->output == OutputFormat::text && !options->quiet && is_terminal(2)) {
      // Only a snapshot that takes a while reports (a cold one of a large
      // tree); the line is redrawn in place, then left as the total.
      request.snapshot_progress = [](const snapshot::CopyProgress& p) {
        std::fprintf(stderr, "\r\033[Kamlrun: snapshot: %s of %s files, %s of %s%s",
                     std::to_string(p.files_done).c_str(), std::to_string(p.files_total).c_str(),
                     util::format_bytes(p.bytes_done).c_str(),
                     util::format_bytes(p.bytes_total).c_str(), p.final ? "\n" : "");
        std::fflush(stderr);
      };
    }
    auto submitted = submit::submit_job(request);
    const auto& id = submitted.record.id;
    if (options->no_wait) {
      if (options->output == OutputFormat::json) {
        auto& store = *submitted.store;
        std::printf("%s\n", run_json(store, store.load(id)).dump(2).c_str());
      } else {
        std::printf("%s\n", id.c_str());
        std::fprintf(stderr, "amlrun: submitted %s (amlrun stream %s follows it)\n", id.c_str(),
                     id.c_str());
      }
      return ExitCode::ok;
    }
    if (options->output == OutputFormat::text && !options->quiet) {
      std::fprintf(stderr, "amlrun: submitted %s (experiment %s, compute %s)\n", id.c_str(),
                   submitted.record.experiment.c_str(), submitted.record.compute.c_str());
    }
    return follow_run(
        *submitted.store, id,
        FollowOptions{options->all_ranks, options->output, options->quiet, options->all_trials},
        std::move(submitted.target));
  };
}

}  // namespace amlrun::cli
