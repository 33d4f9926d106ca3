#include "lib/compute/local/container_run.hpp"

#include <unistd.h>

#include <algorithm>

#include <fmt/format.h>

#include "lib/env/containers.hpp"
#include "lib/util/process.hpp"

namespace amlrun::compute {

namespace fs = std::filesystem;

std::vector<std::string> container_command(const ContainerPlan& plan,
                                           const std::vector<std::string>& program,
                                           const std::vector<std::string>& environment, int rank,
                                           bool named) {
  env::ContainerRun run = plan.base;
  run.working_dir = plan.working_dir;
  if (named) run.name = env::container_name(plan.run_id, rank);
  run.labels = {{env::k_run_label, plan.run_id}, {env::k_workspace_label, plan.workspace_root}};
  run.user = fmt::format("{}:{}", ::getuid(), ::getgid());
  run.mounts = {{plan.working_dir, false}, {plan.metrics_dir, false}};
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
  run.program = program;
  return env::run_command(run);
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
