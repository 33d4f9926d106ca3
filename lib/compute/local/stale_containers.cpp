#include "lib/compute/local/stale_containers.hpp"

#include <fmt/format.h>
#include <filesystem>

#include "lib/env/containers.hpp"
#include "lib/store/run_layout.hpp"
#include "lib/util/file_lock.hpp"

namespace amlrun::compute {

void check_run_containers(store::RunStore& store, bool repair, store::DoctorReport& report) {
  const std::string& runtime = store.workspace().config().environments.runtime;
  if (runtime != "docker" && runtime != "podman") return;
  std::string root = store.workspace().root().string();
  std::vector<env::RunContainer> containers;
  try {
    containers = env::list_run_containers(runtime, root);
  } catch (const std::exception& error) {
    report.findings.push_back(
        {fmt::format("the containers of this workspace's runs could not be listed: {}",
                     error.what()),
         fmt::format("make '{} ps' work, then run amlrun doctor again", runtime), false});
    return;
  }
  for (const auto& container : containers) {
    // A run whose supervisor holds its lock is running: its container is in use.
    bool known =
        !container.run_id.empty() && std::filesystem::exists(store.record_path(container.run_id));
    if (known && util::is_locked(store::RunLayout(store.run_dir(container.run_id)).owner_lock())) {
      continue;
    }
    store::Finding finding{
        fmt::format("container {} ({}) belongs to run {}, which {}", container.name,
                    container.running ? "running" : "stopped", container.run_id,
                    known ? "is no longer running" : "is not in this workspace"),
        "kill and remove it", true};
    if (repair) {
      try {
        env::remove_containers(runtime, {container});
        finding.repaired = env::list_run_containers(runtime, root, container.run_id).empty();
        if (!finding.repaired)
          finding.action = fmt::format("'{} rm --force' did not remove it", runtime);
      } catch (const std::exception& error) {
        finding.action = fmt::format("removing it failed: {}", error.what());
      }
    }
    report.findings.push_back(std::move(finding));
  }
}

}  // namespace amlrun::compute
