#pragma once
// How the ranks of a Slurm run are started inside the allocation (a pure
// function of the plan, so the exact argv is tested without a cluster):
//   none / pytorch  srun, one task per process; `amlrun _rank-exec` turns
//                   SLURM_PROCID/LOCALID/NODEID into RANK/LOCAL_RANK/NODE_RANK
//   mpi             srun --mpi=pmix; Open MPI's mpirun with a hostfile when
//                   this Slurm has no PMIx plugin
//   containers      pyxis: srun --container-image=...; apptainer: the rank
//                   wrapper runs `apptainer exec IMAGE program` on each node
// In a pyxis container the ranks' metrics files are named from
// $AMLRUN_METRICS_DIR, which the driver sets.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "lib/compute/slurm/run_directory.hpp"
#include "lib/spec/job_spec.hpp"

namespace amlrun::compute {

struct SlurmRankLaunch {
  spec::DistributionType distribution = spec::DistributionType::none;
  int nodes = 1;
  int tasks_per_node = 1;
  fs::path amlrun;                   // the staged binary, for `_rank-exec`
  fs::path run_dir;                  // the shared run directory (captured logs, metrics)
  fs::path working_dir;              // wd
  fs::path shared_dir;               // bound into containers so they see the run directory
  std::vector<std::string> program;  // the user program (user_program())
  std::optional<ContainerLaunch> container;
  bool gpus = false;     // apptainer --nv
  bool pmix = true;      // `srun --mpi=list` offers pmix
  fs::path mpirun;       // for the fallback: the mpirun found on the node
  fs::path hostfile;     // for the fallback: one line "<node> slots=<tasks>" per node
  bool as_root = false;  // mpirun --allow-run-as-root
};

std::vector<std::string> slurm_rank_command(const SlurmRankLaunch& launch);

// The hostfile mpirun reads in the fallback.
std::string mpirun_hostfile(const std::vector<std::string>& nodes, int slots_per_node);

// True when `srun --mpi=list` output names a pmix plugin.
bool srun_offers_pmix(const std::string& mpi_list_output);

}  // namespace amlrun::compute
