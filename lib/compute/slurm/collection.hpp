#pragma once
// Bringing a finished Slurm run's files home: the shared run directory's
// sealed outputs and logs (sealed here first when the driver could not: Slurm
// ended the job), Slurm's batch output and the batch script, into the run's
// artifacts in the workspace. The job could change anything in the shared
// directory, so nothing there is followed: links are copied as links.
//
// Crash-safe and resumable: everything is gathered in runs/<id>/
// artifacts.collecting/ (outputs/ and logs/ each appear there only once
// complete: renamed across, or copied and verified by file count and sizes),
// which then takes the place of artifacts/ in one rename; the shared copy is
// removed last. An interrupted collection is picked up where it stopped.
#include <functional>
#include <string>
#include <vector>

#include "lib/store/run_layout.hpp"
#include "lib/util/safe_dir.hpp"

namespace amlrun::compute {

struct CollectionResult {
  std::vector<std::string> warnings;  // what sealing found (./logs deleted, ...)
};

// Throws util::InfraError when the files cannot be brought home (the shared
// copy is then left as it is, for the next attempt).
CollectionResult collect_run(const store::SlurmRunLayout& shared, const store::RunLayout& local,
                             const std::function<void(const std::string&)>& log);

// Gives runs/<id>/artifacts.collecting, complete, its place as artifacts/
// in one rename (an artifacts/ left by an older amlrun gives way).
void put_collected_artifacts_in_place(const util::SafeDir& local_root,
                                      const store::RunLayout& local);

// True once collect_run has put the artifacts in place.
bool is_collected(const store::RunLayout& local);

}  // namespace amlrun::compute
