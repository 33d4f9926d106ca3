#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "lib/launch/rank_environment.hpp"
#include "lib/launch/rank_exec.hpp"
#include "lib/launch/tensorflow_config.hpp"
#include "lib/store/run_layout.hpp"
#include "lib/util/process.hpp"
#include "lib/util/safe_dir.hpp"

namespace amlrun::launch {

static int first_integer_variable(std::initializer_list<const char*> names, int fallback) {
  for (const char* name : names) {
    if (const char* value = ::getenv(name)) return std::atoi(value);
  }
  return fallback;
}

int exec_rank(const std::filesystem::path& run_dir, int processes_per_node, bool torch_contract,
              const std::vector<std::string>& argv) {
  if (argv.empty()) {
    (void)std::fprintf(stderr, "amlrun _rank-exec: no program given\n");
    return 2;
  }
  int rank =
      first_integer_variable({"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"}, 0);
  int world = first_integer_variable({"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS"}, 1);
  // Ranks are laid out in blocks of processes_per_node (mpirun's and srun's
  // default), and one machine can stand in for several nodes (the local
  // target simulating instance_count > 1), so local and node ranks come from
  // the declared layout rather than from what the launcher saw...
  if (processes_per_node < 1) processes_per_node = 1;
  int local_rank = rank % processes_per_node;
  int local_size = processes_per_node;
  int node_rank = rank / processes_per_node;
  // ...except for tasks srun started itself (no mpirun in between): there
  // Slurm knows the real node and the rank on it.
  if (!::getenv("OMPI_COMM_WORLD_RANK") && ::getenv("SLURM_STEP_ID") && ::getenv("SLURM_PROCID")) {
    local_rank = first_integer_variable({"SLURM_LOCALID"}, local_rank);
    node_rank = first_integer_variable({"SLURM_NODEID"}, node_rank);
  }

  auto set = [](const char* name, const std::string& value) { ::setenv(name, value.c_str(), 1); };
  if (torch_contract) {
    set("RANK", std::to_string(rank));
    set("WORLD_SIZE", std::to_string(world));
    set("LOCAL_RANK", std::to_string(local_rank));
    set("LOCAL_WORLD_SIZE", std::to_string(local_size));
    set("NODE_RANK", std::to_string(node_rank));
    set("GROUP_RANK", std::to_string(node_rank));
  }
  // The launcher knows every rank's address, each rank only its own rank:
  // TF_CONFIG is made here from the cluster it handed over.
  if (const char* cluster_json = ::getenv(k_tensorflow_cluster_variable)) {
    try {
      auto cluster = tensorflow_cluster_from_json(cluster_json);
      if (rank >= cluster.size()) {
        (void)std::fprintf(stderr,
                           "amlrun _rank-exec: rank %d is outside the TensorFlow cluster of %d\n",
                           rank, cluster.size());
        return 2;
      }
      set("TF_CONFIG", tensorflow_config(cluster, rank));
    } catch (const std::exception& error) {
      (void)std::fprintf(stderr, "amlrun _rank-exec: %s\n", error.what());
      return 2;
    }
    ::unsetenv(k_tensorflow_cluster_variable);
  }
  store::RunTree tree(run_dir);
  set("AMLRUN_METRICS_FILE", tree.rank_metrics(rank).string());
  if (const char* tracking = ::getenv(k_tracking_base_variable); tracking && *tracking) {
    set("MLFLOW_TRACKING_URI", rank_tracking_uri(tracking, rank));
  }

  // The rank's log is reached from the run directory without following a
  // link: a job cannot point it at a file of the user's.
  int fd = -1;
  try {
    auto logs = util::SafeDir::open(run_dir).make_dirs(store::RunTree::relative_user_logs());
    fd = logs.open_file(store::RunTree::rank_log_name(rank), O_WRONLY | O_CREAT | O_APPEND)
             .release();
  } catch (const std::exception& error) {
    (void)std::fprintf(stderr, "amlrun _rank-exec: cannot open the log of rank %d: %s\n", rank,
                       error.what());
    return 127;
  }
  ::dup2(fd, 1);
  ::dup2(fd, 2);
  ::close(fd);
  auto program = util::find_executable(argv[0]);
  if (!program) {
    (void)std::fprintf(stderr, "amlrun: cannot run '%s': command not found in PATH\n",
                       argv[0].c_str());
    return 127;
  }
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  ::execv(program->c_str(), args.data());
  (void)std::fprintf(stderr, "amlrun: cannot run '%s': %s\n", argv[0].c_str(),
                     std::strerror(errno));
  return 126;
}

}  // namespace amlrun::launch
