#pragma once
// Sealing a run's working directory, the same for the local supervisor, the
// Slurm driver and a reconciling `amlrun` after a lost owner: what the job
// left in ./outputs and ./logs joins the run's artifacts, and the working
// directory goes. The job can change everything in its working directory,
// so nothing there is trusted: every directory is opened without following
// links (util::SafeDir), links are moved as links and never followed, and
// what the job did to ./outputs or ./logs (deleted them, put a link or a file
// in their place) is reported as a warning for the run record.
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "lib/store/run_layout.hpp"

namespace amlrun::launch {

struct SealResult {
  // For the run record and the console: "./logs was deleted by the job; ...".
  std::vector<std::string> warnings;
};

// Moves wd/outputs to artifacts/outputs and merges wd/logs into
// artifacts/logs (where amlrun's captured logs already are: a name the job
// used that amlrun uses too keeps amlrun's file, and the job's is kept beside
// it as NAME.job). Empty artifacts/outputs and artifacts/logs exist
// afterwards whatever happened. Then removes wd/. Safe to run again after an
// interruption. Problems are reported through `log` and the result, never
// thrown: the run's result is already decided.
SealResult seal_working_directory(const store::RunTree& tree,
                                  const std::function<void(const std::string&)>& log);

// True when the working directory still exists (nothing sealed it yet).
bool has_unsealed_working_directory(const store::RunTree& tree);

}  // namespace amlrun::launch
