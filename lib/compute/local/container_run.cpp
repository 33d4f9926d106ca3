#include "lib/compute/local/container_run.hpp"

#include <unistd.h>

#include <algorithm>

#include <fmt/format.h>

#include "lib/env/containers.hpp"
#include "lib/util/error.hpp"
#include "lib/util/process.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::compute {

namespace fs = std::filesystem;

namespace {

// The container as every command of the plan describes it: mounts, labels,
// user, and the variables of `environment` passed by name.
env::ContainerRun describe(const ContainerPlan& plan, const std::vector<std::string>& environment) {
  env::ContainerRun run = plan.base;
  run.working_dir = plan.working_dir;
  run.labels = {{env::k_run_label, plan.run_id}, {env::k_workspace_label, plan.workspace_root}};
  run.user = fmt::format("{}:{}", ::getuid(), ::getgid());
  run.mounts = {{plan.working_dir, false}, {plan.metrics_dir, false}};
  if (!plan.user_logs_dir.empty()) run.mounts.emplace_back(plan.user_logs_dir, false);
  if (!plan.inputs_dir.empty()) run.mounts.emplace_back(plan.inputs_dir, true);
  for (const auto& path : plan.read_only) run.mounts.emplace_back(path, true);
  // The host's own settings stay outside: the image has its PATH and HOME.
  static const std::vector<std::string> host_only = {"PATH",  "HOME",   "HOSTNAME", "PWD",
                                                     "SHLVL", "OLDPWD", "TERM",     "_"};
  auto base = util::current_environment();
  for (const auto& entry : environment) {
    std::string name = entry.substr(0, entry.find('='));
    bool inherited = std::find(base.begin(), base.end(), entry) != base.end();
    if (!inherited && std::find(host_only.begin(), host_only.end(), name) == host_only.end()) {
      run.variables.push_back(name);
    }
  }
  return run;
}

// Run by `sh -c` for each rank mpirun starts in the container: picks this
// rank's log and variables from the arguments (groups of <rank> <log>
// <count> <NAME=value>..., then --, then the program) and runs the program.
// Values arrive as arguments, never as shell text.
constexpr const char* k_rank_script = R"(r=${OMPI_COMM_WORLD_RANK:?not started by mpirun}
while [ "$1" != "--" ]; do
  rank=$1; log=$2; count=$3; shift 3
  [ "$rank" = "$r" ] && mine=$log
  while [ "$count" -gt 0 ]; do
    [ "$rank" = "$r" ] && export "$1"
    shift; count=$((count - 1))
  done
done
shift
exec "$@" >>"$mine" 2>&1)";

}  // namespace

std::vector<std::string> container_command(const ContainerPlan& plan,
                                           const std::vector<std::string>& program,
                                           const std::vector<std::string>& environment) {
  env::ContainerRun run = describe(plan, environment);
  run.name = env::container_name(plan.run_id);
  run.program = program;
  return env::run_command(run);
}

std::vector<std::string> shared_start_command(const ContainerPlan& plan) {
  env::ContainerRun run = describe(plan, {});
  run.name = env::container_name(plan.run_id);
  return env::start_command(run);
}

void start_shared_container(const ContainerPlan& plan) {
  util::SpawnOptions options;
  options.argv = shared_start_command(plan);
  auto result = util::run_capture(options, "", std::chrono::seconds(120));
  if (result.exit_code != 0) {
    throw util::InfraError(fmt::format("'{} run' of the run's container failed: {}",
                                       plan.base.runtime, util::trim(result.err)));
  }
}

std::vector<MpiRank> mpi_ranks(const launch::RunContext& context,
                               const std::vector<std::string>& environment,
                               const store::RunTree& tree) {
  std::vector<MpiRank> ranks;
  for (int rank = 0; rank < context.world_size(); ++rank) {
    auto rank_environment = environment;
    launch::add_rank_environment(rank_environment, context, rank);
    MpiRank mine{tree.rank_log(rank), {}};
    for (const auto& entry : rank_environment) {
      if (std::find(environment.begin(), environment.end(), entry) == environment.end()) {
        mine.variables.push_back(entry);
      }
    }
    ranks.push_back(std::move(mine));
  }
  return ranks;
}

std::vector<std::string> shared_exec_command(const ContainerPlan& plan,
                                             const std::vector<std::string>& program,
                                             const std::vector<std::string>& environment) {
  env::ContainerRun run = describe(plan, environment);
  run.name = env::container_name(plan.run_id);
  run.program = program;
  return env::exec_command(run);
}

std::vector<std::string> mpirun_in_container(const std::vector<MpiRank>& ranks,
                                             const std::vector<std::string>& program) {
  std::vector<std::string> argv = {"mpirun"};
  // Inside the container the user is the submitter's uid; root needs saying.
  if (::getuid() == 0) argv.push_back("--allow-run-as-root");
  argv.insert(argv.end(), {"--oversubscribe", "--bind-to", "none", "-np",
                           std::to_string(ranks.size()), "sh", "-c", k_rank_script, "sh"});
  for (std::size_t rank = 0; rank < ranks.size(); ++rank) {
    argv.insert(argv.end(), {std::to_string(rank), ranks[rank].log.string(),
                             std::to_string(ranks[rank].variables.size())});
    argv.insert(argv.end(), ranks[rank].variables.begin(), ranks[rank].variables.end());
  }
  argv.push_back("--");
  argv.insert(argv.end(), program.begin(), program.end());
  return argv;
}

bool terminate_shared_container(const ContainerPlan& plan) {
  env::ContainerRun run = describe(plan, {});
  run.name = env::container_name(plan.run_id);
  run.program = {"sh", "-c", "kill -TERM -1"};
  util::SpawnOptions options;
  options.argv = env::exec_command(run);
  return util::run_capture(options, "", std::chrono::seconds(10)).exit_code == 0;
}

bool host_has_gpus() {
  std::error_code ignored;
  return fs::exists("/dev/nvidiactl", ignored);
}

std::string end_containers(const ContainerPlan& plan) {
  try {
    auto ended = env::end_run_containers(plan.base.runtime, plan.workspace_root, plan.run_id);
    if (ended == 0) return "";
    return fmt::format("ended and removed {} container{} of the run", ended, ended == 1 ? "" : "s");
  } catch (const std::exception& error) {
    return fmt::format("could not end the run's containers: {}", error.what());
  }
}

}  // namespace amlrun::compute
