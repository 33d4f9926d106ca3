#include "lib/compute/compute_target.hpp"

#include <fmt/format.h>

#include "lib/compute/local_target.hpp"
#include "lib/compute/slurm_target.hpp"
#include "lib/util/error.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::compute {

std::vector<std::filesystem::path> ComputeTarget::log_directories(
    const store::RunStore& store, const store::RunRecord& record) const {
  auto run_dir = store.run_dir(record.id);
  return {run_dir / "wd" / "logs" / "user_logs", run_dir / "artifacts" / "logs" / "user_logs"};
}

std::unique_ptr<ComputeTarget> make_target(const workspace::Workspace& workspace,
                                           const std::string& name) {
  if (name == "local") return std::make_unique<LocalTarget>(workspace);
  std::vector<std::string> known = {"local"};
  for (const auto& target : workspace.config().compute) known.push_back(target.name);
  if (const auto* target = workspace.config().find_target(name)) {
    if (target->type == "slurm") {
      return std::make_unique<SlurmTarget>(workspace, read_slurm_settings(*target));
    }
    throw util::InputError(
        fmt::format("compute target '{}' has type {}, which this amlrun cannot "
                    "run yet",
                    name, target->type));
  }
  throw util::InputError(fmt::format("no compute target '{}' in {} (known: {}){}", name,
                                     workspace.config_path().string(), util::join(known, ", "),
                                     util::did_you_mean_suffix(name, known)));
}

}  // namespace amlrun::compute
