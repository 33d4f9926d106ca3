// amlrun: run PyTorch training jobs from YAML specs, locally or on Slurm.
// main() parses, dispatches to the command table, and holds the single catch
// that prints "amlrun: error: ..." and maps errors to exit codes.
#include <signal.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <vector>

#include "cli/amlrun/commands.hpp"
#include "lib/util/strings.hpp"
#include "lib/util/timing.hpp"

namespace {

using amlrun::ExitCode;
using amlrun::cli::Command;

const Command k_commands[] = {
    {"submit", "Submit a job file and follow it to the end", false, amlrun::cli::add_submit},
    {"stream", "Follow a run's logs until it ends (reattach)", false, amlrun::cli::add_stream},
    {"cancel", "Cancel a run", false, amlrun::cli::add_cancel},
    {"show", "Show a run's state, exit code and details", false, amlrun::cli::add_show},
    {"runs", "List runs and tag them (runs list, runs tag)", false, amlrun::cli::add_runs},
    {"metrics", "Print or plot a run's metrics (compare runs)", false, amlrun::cli::add_metrics},
    {"download", "Copy a run's outputs (and logs) to a local directory", false,
     amlrun::cli::add_download},
    {"model", "Register, list, show, download and delete models", false, amlrun::cli::add_model},
    {"ui", "Serve the workspace as a web view (runs, live logs, metrics, sweeps, models)", false,
     amlrun::cli::add_ui},
    {"doctor", "Check the workspace index against its files (--repair fixes it)", false,
     amlrun::cli::add_doctor},
    {"validate", "Check a job file and print the normalised spec", false,
     amlrun::cli::add_validate},
    {"init", "Create a workspace (.amlrun/) in a directory", false, amlrun::cli::add_init},
    {"compute", "List the compute targets, or show one (Slurm: reachability, idle nodes)", false,
     amlrun::cli::add_compute},
    {"env", "Show, write the build context of, or build a job's environment", false,
     amlrun::cli::add_env},
    {"_supervise", "internal: own a local run", true, amlrun::cli::add_supervise},
    {"_sweep", "internal: own a sweep (its controller)", true, amlrun::cli::add_sweep_controller},
    {"_rank-exec", "internal: start one rank under mpirun or srun", true,
     amlrun::cli::add_rank_exec},
    {"_slurm-run", "internal: run a Slurm job on its first node (the batch script)", true,
     amlrun::cli::add_slurm_run},
    {"_slurm-agent", "internal: serve a Slurm target reached over ssh (on its login node)", true,
     amlrun::cli::add_slurm_agent},
};

int fail(ExitCode code, const std::string& message) {
  std::fprintf(stderr, "amlrun: error: %s\n", message.c_str());
  return static_cast<int>(code);
}

}  // namespace

int main(int argc, char** argv) {
  amlrun::util::timing_mark("main");
  // A closed stdout (| head) must end writes with an error, not kill us.
  ::signal(SIGPIPE, SIG_IGN);
  CLI::App app{"amlrun: train PyTorch models from YAML job files, here or on a cluster"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("amlrun ") + AMLRUN_VERSION);
  amlrun::cli::GlobalOptions global;
  app.add_option("--workspace", global.workspace,
                 "The workspace directory (default: .amlrun here or above; AMLRUN_WORKSPACE)");
  // --workspace may also come after the command (amlrun submit job.yml --workspace W).
  app.fallthrough();
  std::vector<std::pair<CLI::App*, amlrun::cli::Handler>> handlers;
  std::vector<std::string> names;
  for (const auto& command : k_commands) {
    CLI::App* sub = app.add_subcommand(command.name, command.hidden ? "" : command.help);
    if (command.hidden) sub->group("");
    amlrun::cli::Handler handler;
    command.add(*sub, global, handler);
    handlers.emplace_back(sub, std::move(handler));
    if (!command.hidden) names.emplace_back(command.name);
  }

  // An unknown command gets a suggestion instead of CLI11's generic text.
  for (int i = 1; i < argc; ++i) {
    std::string word = argv[i];
    if (word == "--workspace") {
      ++i;
      continue;
    }
    if (word.rfind("-", 0) == 0) continue;
    bool known = false;
    for (const auto& command : k_commands) known |= word == command.name;
    if (!known) {
      return fail(ExitCode::invalid_input,
                  fmt::format("unknown command '{}'{}; run 'amlrun --help' for the list", word,
                              amlrun::util::did_you_mean_suffix(word, names)));
    }
    break;
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // The command as far as it was parsed ("runs list "), for its help.
    std::string context;
    for (const CLI::App* at = &app; !at->get_subcommands().empty();) {
      at = at->get_subcommands().front();
      context += at->get_name() + " ";
    }
    return fail(ExitCode::invalid_input,
                fmt::format("{} (see 'amlrun {}--help')", e.what(), context));
  }

  try {
    for (auto& [sub, handler] : handlers) {
      if (sub->parsed()) {
        amlrun::util::timing_mark("arguments parsed");
        return static_cast<int>(handler());
      }
    }
    return static_cast<int>(ExitCode::invalid_input);
  } catch (const amlrun::util::Error& e) {
    return fail(e.code(), e.what());
  } catch (const std::exception& e) {
    return fail(ExitCode::infrastructure, fmt::format("internal error: {}", e.what()));
  }
}
