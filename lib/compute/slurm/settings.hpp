#pragma once
// The settings of a `type: slurm` target in the workspace config:
//
//   compute:
//     gpu-cluster:
//       type: slurm
//       shared_dir: /shared/amlrun   # required: a directory every node sees
//       partition: gpu               # optional from here on
//       account: ml
//       qos: normal
//       gpus_per_node: 4
//       constraint: a100
//       extra_sbatch_args: [--mem=64G, --exclusive]
//       container: {runtime: pyxis, image: nvcr.io/nvidia/pytorch:24.01-py3}
//       ssh: login.example.org       # submit from elsewhere (ssh/ssh_settings.hpp)
//
// Read with spec::MapReader, so every error names config.yml:line:column and
// the key, and unknown keys get a suggestion.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "lib/compute/slurm/run_directory.hpp"
#include "lib/compute/slurm/ssh/ssh_settings.hpp"
#include "lib/workspace/workspace.hpp"

namespace amlrun::compute {

struct SlurmSettings {
  std::string name;
  std::filesystem::path shared_dir;
  std::string partition;
  std::string account;
  std::string qos;
  std::string constraint;
  std::optional<int> gpus_per_node;
  std::vector<std::string> extra_sbatch_args;
  std::optional<ContainerLaunch> container;
  // Set: the cluster is reached over SSH (ssh/ssh_target.hpp); else this
  // machine is a login node (sbatch here, shared_dir mounted).
  std::optional<SshSettings> ssh;
};

// Throws spec::SpecError with every problem of the target's settings.
SlurmSettings read_slurm_settings(const workspace::ComputeTargetConfig& config);

}  // namespace amlrun::compute
