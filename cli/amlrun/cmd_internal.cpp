// Hidden commands that amlrun runs itself: the local supervisor, a sweep's
// controller, the rank wrapper started by mpirun/srun, and the node side of
// a Slurm run.
#include "cli/amlrun/commands.hpp"
#include "lib/compute/local/supervisor.hpp"
#include "lib/compute/slurm/driver.hpp"
#include "lib/compute/slurm/ssh/agent.hpp"
#include "lib/compute/sweep/controller.hpp"
#include "lib/launch/rank_exec.hpp"

namespace amlrun::cli {

namespace {

// The command line compute::start_detached_owner gives a run's owner.
void add_owner(CLI::App& app, Handler& handler, int (*own)(const compute::OwnerOptions&)) {
  auto options = std::make_shared<compute::OwnerOptions>();
  auto root = std::make_shared<std::string>();
  app.add_option("--root", *root)->required();
  app.add_option("--run", options->run_id)->required();
  app.add_option("--lock-fd", options->lock_fd)->required();
  handler = [options, root, own]() {
    options->workspace_root = *root;
    return static_cast<ExitCode>(own(*options));
  };
}

}  // namespace

void add_supervise(CLI::App& app, GlobalOptions&, Handler& handler) {
  add_owner(app, handler, compute::supervise_run);
}

void add_sweep_controller(CLI::App& app, GlobalOptions&, Handler& handler) {
  add_owner(app, handler, compute::control_sweep);
}

void add_rank_exec(CLI::App& app, GlobalOptions&, Handler& handler) {
  auto run_dir = std::make_shared<std::string>();
  auto per_node = std::make_shared<int>(1);
  auto no_torch_contract = std::make_shared<bool>(false);
  auto argv = std::make_shared<std::vector<std::string>>();
  app.add_option("--run-dir", *run_dir)->required();
  app.add_option("--processes-per-node", *per_node);
  app.add_flag("--no-torch-contract", *no_torch_contract);
  app.add_option("PROGRAM", *argv)->required();
  app.prefix_command(false);
  handler = [run_dir, per_node, no_torch_contract, argv]() {
    return static_cast<ExitCode>(
        launch::exec_rank(*run_dir, *per_node, !*no_torch_contract, *argv));
  };
}

void add_slurm_run(CLI::App& app, GlobalOptions&, Handler& handler) {
  auto run_dir = std::make_shared<std::string>();
  app.add_option("--run-dir", *run_dir)->required();
  handler = [run_dir]() { return static_cast<ExitCode>(compute::run_slurm_job(*run_dir)); };
}

void add_slurm_agent(CLI::App& app, GlobalOptions&, Handler& handler) {
  auto options = std::make_shared<compute::AgentOptions>();
  app.add_option("--workspace", options->workspace)->required();
  app.add_option("--target", options->target)->required();
  handler = [options]() { return static_cast<ExitCode>(compute::serve_slurm_agent(*options)); };
}

}  // namespace amlrun::cli
