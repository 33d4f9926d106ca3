#pragma once
// How the ranks of a Slurm run are started inside the allocation (a pure
// function of the plan, so the exact argv is tested without a cluster):
//   none / pytorch  srun, one task per process; `amlrun _rank-exec` turns
//                   SLURM_PROCID/LOCALID/NODEID into RANK/LOCAL_RANK/NODE_RANK
//   tensorflow      as pytorch; the driver hands every rank the cluster
//                   ($AMLRUN_TENSORFLOW_CLUSTER) and the rank makes its
//                   TF_CONFIG from it and SLURM_PROCID
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
#include "lib/launch/tensorflow_config.hpp"
#include "lib/spec/job_spec.hpp"

namespace amlrun::compute {

struct SlurmRankLaunch {
  spec::DistributionType distribution = spec::DistributionType::none;
  int nodes = 1;
  int tasks_per_node = 1;
  int tensorflow_workers = 0;        // tensorflow: ranks below it are workers, the rest ps
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

// The TensorFlow cluster of a Slurm run: ranks in blocks of tasks_per_node
// on the nodes in order (srun's block distribution), rank r on its node at
// port master_port + 1 + its local rank. Ports are derived like MASTER_PORT
// on Slurm (from the job id, not probed): every node knows them without
// talking to the others, and a requeued job keeps them.
launch::TensorflowCluster slurm_tensorflow_cluster(const std::vector<std::string>& nodes,
                                                   int tasks_per_node, int master_port,
                                                   int worker_count);

// The hostfile mpirun reads in the fallback.
std::string mpirun_hostfile(const std::vector<std::string>& nodes, int slots_per_node);

// True when `srun --mpi=list` output names a pmix plugin.
bool srun_offers_pmix(const std::string& mpi_list_output);

}  // namespace amlrun::compute
