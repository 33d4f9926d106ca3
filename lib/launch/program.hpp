#pragma once
// What each rank of a run executes, and how MPI runs are started.
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "lib/spec/job_spec.hpp"

namespace amlrun::launch {

// The argv of the user program: `bash -c <script>` for a command job; the
// estimator's `python <entry_script> <params>` or the trainer's amlrun-worker
// command with ${{inputs.x}} replaced by the prepared values. `python` is
// whichever of python/python3 the run's PATH has (a venv's comes first);
// amlrun-worker is the one installed beside amlrun. In a container
// (`resolve` false) names stay as they are, for the image's PATH. Throws
// util::InputError when a program cannot be found.
std::vector<std::string> user_program(
    const spec::JobSpec& spec, const std::vector<std::pair<std::string, std::string>>& inputs,
    const std::vector<std::string>& environment, bool resolve = true);

// The amlrun binary itself (/proc/self/exe), for `amlrun _rank-exec`.
std::filesystem::path amlrun_executable();

// The folder of amlrun's azureml shim (azureml.core.Run over the run's
// tracking endpoint), installed with amlrun: `python/` beside the binary
// (a Slurm staging folder) or `share/amlrun/python` beside its bin/ (the
// build tree and an install). Empty when neither holds azureml/__init__.py.
std::filesystem::path python_shim_dir(const std::filesystem::path& executable);

struct MpiLaunch {
  int processes = 1;
  std::vector<std::string> rank_command;  // what mpirun starts on every rank
};

// `mpirun` with what this machine needs: --allow-run-as-root as root,
// --oversubscribe when there are more ranks than cores, no core binding (a
// run shares the machine), and the rank command after "--".
std::vector<std::string> mpirun_command(const MpiLaunch& launch);

}  // namespace amlrun::launch
