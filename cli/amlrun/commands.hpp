#pragma once
// The command table of `amlrun`: one registration function per command group
// (one file each). Commands parse arguments, call lib/, and print.
#include <CLI/CLI.hpp>

#include <filesystem>
#include <optional>
#include <string>

#include "lib/store/run_record.hpp"
#include "lib/util/error.hpp"
#include "lib/workspace/workspace.hpp"

namespace amlrun::cli {

// Options every command shares.
struct GlobalOptions {
  std::optional<std::string> workspace;  // --workspace, else AMLRUN_WORKSPACE
};

// What a command's handler returns becomes the process exit code.
struct CommandResult {
  ExitCode code = ExitCode::ok;
};

// Set by a command; main runs it after parsing.
using Handler = std::function<ExitCode()>;

struct Command {
  const char* name;
  const char* help;
  bool hidden;
  void (*add)(CLI::App& app, GlobalOptions& global, Handler& handler);
};

void add_submit(CLI::App& app, GlobalOptions& global, Handler& handler);
void add_stream(CLI::App& app, GlobalOptions& global, Handler& handler);
void add_cancel(CLI::App& app, GlobalOptions& global, Handler& handler);
void add_show(CLI::App& app, GlobalOptions& global, Handler& handler);
void add_validate(CLI::App& app, GlobalOptions& global, Handler& handler);
void add_init(CLI::App& app, GlobalOptions& global, Handler& handler);
void add_compute(CLI::App& app, GlobalOptions& global, Handler& handler);
void add_env(CLI::App& app, GlobalOptions& global, Handler& handler);
void add_supervise(CLI::App& app, GlobalOptions& global, Handler& handler);
void add_sweep_controller(CLI::App& app, GlobalOptions& global, Handler& handler);
void add_rank_exec(CLI::App& app, GlobalOptions& global, Handler& handler);
void add_slurm_run(CLI::App& app, GlobalOptions& global, Handler& handler);
void add_slurm_agent(CLI::App& app, GlobalOptions& global, Handler& handler);
void add_runs(CLI::App& app, GlobalOptions& global, Handler& handler);
void add_metrics(CLI::App& app, GlobalOptions& global, Handler& handler);
void add_download(CLI::App& app, GlobalOptions& global, Handler& handler);
void add_model(CLI::App& app, GlobalOptions& global, Handler& handler);
void add_doctor(CLI::App& app, GlobalOptions& global, Handler& handler);
void add_ui(CLI::App& app, GlobalOptions& global, Handler& handler);

// The handler of a command group (amlrun runs, amlrun model): runs the
// sub-command given; a missing or unknown one is an InputError with a
// suggestion.
Handler group_handler(CLI::App& app, const std::string& group,
                      std::vector<std::pair<CLI::App*, Handler>> commands);

// The workspace as the user pointed at it (flag, variable, or walking up).
workspace::OpenOptions workspace_options(const GlobalOptions& global, bool create_if_missing);

// Exit code for a terminal run (DESIGN.md): Completed 0, Canceled 4,
// Failed 1 — or 3 when it failed for the infrastructure's reasons (Slurm
// preemption, node failure), not the code's.
ExitCode exit_code_for_record(const store::RunRecord& record);

}  // namespace amlrun::cli
