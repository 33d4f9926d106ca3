#include "lib/compute/compute_target.hpp"

#include <fmt/format.h>
#include <map>

#include "lib/compute/local/local_target.hpp"
#include "lib/compute/slurm/ssh/ssh_target.hpp"
#include "lib/compute/slurm/target.hpp"
#include "lib/compute/sweep/sweep_target.hpp"
#include "lib/util/error.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::compute {

std::vector<store::RunRecord> ComputeTarget::refresh_all(store::RunStore& store,
                                                         std::vector<store::RunRecord> records) {
  for (auto& record : records) record = refresh(store, std::move(record));
  return records;
}

std::vector<std::filesystem::path> ComputeTarget::log_roots(const store::RunStore& store,
                                                            const store::RunRecord& record) const {
  return {store.run_dir(record.id)};
}

std::vector<store::RunRecord> refresh_runs(store::RunStore& store,
                                           const std::vector<std::string>& ids) {
  std::map<std::string, std::vector<store::RunRecord>> by_target;
  for (const auto& id : ids) {
    try {
      auto record = store.load(id);
      // A sweep is owned by its controller, not by its trials' target.
      std::string owner = record.kind == store::RunKind::sweep ? "" : record.compute;
      by_target[owner].push_back(std::move(record));
    } catch (const util::Error&) {
      // A damaged record is the listing's to report, not ours.
    }
  }
  std::vector<store::RunRecord> refreshed;
  for (auto& [name, records] : by_target) {
    try {
      auto target = name.empty() ? std::make_unique<SweepTarget>(store.workspace())
                                 : make_target(store.workspace(), name);
      records = target->refresh_all(store, std::move(records));
    } catch (const util::Error&) {
      // A target that cannot be used now (removed from config.yml, Slurm
      // unreachable): the records as they are.
    }
    for (auto& record : records) refreshed.push_back(std::move(record));
  }
  return refreshed;
}

std::unique_ptr<ComputeTarget> make_target(const workspace::Workspace& workspace,
                                           const std::string& name) {
  if (name == "local") return std::make_unique<LocalTarget>(workspace);
  std::vector<std::string> known = {"local"};
  for (const auto& target : workspace.config().compute) known.push_back(target.name);
  if (const auto* target = workspace.config().find_target(name)) {
    if (target->type == "slurm") {
      auto settings = read_slurm_settings(*target);
      if (settings.ssh) return std::make_unique<SshSlurmTarget>(workspace, std::move(settings));
      return std::make_unique<SlurmTarget>(workspace, std::move(settings));
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

std::unique_ptr<ComputeTarget> target_of(const workspace::Workspace& workspace,
                                         const store::RunRecord& record) {
  if (record.kind == store::RunKind::sweep) return std::make_unique<SweepTarget>(workspace);
  return make_target(workspace, record.compute);
}

}  // namespace amlrun::compute
