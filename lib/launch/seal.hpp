#pragma once
// Sealing a run's working directory, the same for the local supervisor and
// the Slurm batch step: what the program left in ./outputs and ./logs becomes
// the run's artifacts, and the working directory goes.
#include <filesystem>
#include <functional>
#include <string>

namespace amlrun::launch {

// Moves working_dir/outputs and working_dir/logs into artifacts_dir (which
// must exist), leaving an empty folder where one was missing or replaced by
// something that is not a directory, then removes working_dir. Problems are
// reported through log, never thrown: the run's result is already decided.
void seal_working_directory(const std::filesystem::path& working_dir,
                            const std::filesystem::path& artifacts_dir,
                            const std::function<void(const std::string&)>& log);

}  // namespace amlrun::launch
