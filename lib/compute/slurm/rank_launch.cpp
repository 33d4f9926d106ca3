#include "lib/compute/slurm/rank_launch.hpp"

#include <fmt/format.h>

#include "lib/launch/rank_environment.hpp"
#include "lib/store/run_layout.hpp"
#include "lib/util/error.hpp"

namespace amlrun::compute {

namespace {

// Inside a pyxis container amlrun itself may not run (the image has its own
// libraries), so the rank variables are set by this fixed script instead of
// `_rank-exec`; the user program follows as "$@", never as script text.
std::string pyxis_rank_script(const SlurmRankLaunch& launch) {
  std::string script =
      "export AMLRUN_METRICS_FILE=\"$AMLRUN_METRICS_DIR/rank_$SLURM_PROCID.jsonl\"; ";
  // Each rank's own MLflow URI, as _rank-exec makes it (rank_tracking_uri).
  script +=
      "if [ -n \"$AMLRUN_TRACKING_URI\" ]; then export "
      "MLFLOW_TRACKING_URI=\"$AMLRUN_TRACKING_URI/rank/$SLURM_PROCID\"; fi; ";
  if (launch.distribution != spec::DistributionType::none) {
    script += fmt::format(
        "export RANK=\"$SLURM_PROCID\" WORLD_SIZE=\"$SLURM_NTASKS\" LOCAL_RANK=\"$SLURM_LOCALID\" "
        "LOCAL_WORLD_SIZE={} NODE_RANK=\"$SLURM_NODEID\" GROUP_RANK=\"$SLURM_NODEID\"; ",
        launch.tasks_per_node);
  }
  if (launch.distribution == spec::DistributionType::tensorflow) {
    // TF_CONFIG from the cluster the driver exported and this task's rank;
    // the cluster is expanded as a variable, never as script text.
    script += fmt::format(
        "if [ \"$SLURM_PROCID\" -lt {0} ]; then amlrun_task=worker; "
        "amlrun_index=\"$SLURM_PROCID\"; else amlrun_task=ps; "
        "amlrun_index=$((SLURM_PROCID - {0})); fi; "
        "export TF_CONFIG=\"{{\\\"cluster\\\": ${{{1}}}, \\\"task\\\": {{\\\"type\\\": "
        "\\\"$amlrun_task\\\", \\\"index\\\": $amlrun_index}}}}\"; unset {1} amlrun_task "
        "amlrun_index; ",
        launch.tensorflow_workers, launch::k_tensorflow_cluster_variable);
  }
  return script + "exec \"$@\"";
}

std::vector<std::string> rank_exec(const SlurmRankLaunch& launch) {
  std::vector<std::string> argv = {
      launch.amlrun.string(),  "_rank-exec",           "--run-dir",
      launch.run_dir.string(), "--processes-per-node", std::to_string(launch.tasks_per_node)};
  // As locally: single-process jobs get no torch contract, so they don't try
  // to initialise a process group.
  if (launch.distribution == spec::DistributionType::none) argv.push_back("--no-torch-contract");
  argv.push_back("--");
  return argv;
}

void append(std::vector<std::string>& to, const std::vector<std::string>& words) {
  to.insert(to.end(), words.begin(), words.end());
}

}  // namespace

std::vector<std::string> slurm_rank_command(const SlurmRankLaunch& launch) {
  bool mpi = launch.distribution == spec::DistributionType::mpi;
  bool pyxis = launch.container && launch.container->runtime == "pyxis";
  bool apptainer = launch.container && launch.container->runtime == "apptainer";
  std::vector<std::string> argv;
  if (mpi && !launch.pmix) {
    if (pyxis) {
      throw util::InfraError(
          "this Slurm has no PMIx plugin (srun --mpi=list), which an mpi job "
          "in a pyxis container needs; ask the administrators for it or use "
          "container runtime apptainer");
    }
    argv = {launch.mpirun.string()};
    if (launch.as_root) argv.push_back("--allow-run-as-root");
    append(argv, {"--hostfile", launch.hostfile.string(), "-np",
                  std::to_string(launch.nodes * launch.tasks_per_node), "--map-by",
                  fmt::format("ppr:{}:node", launch.tasks_per_node), "--bind-to", "none"});
  } else {
    argv = {"srun", fmt::format("--mpi={}", mpi ? "pmix" : "none"),
            fmt::format("--nodes={}", launch.nodes),
            fmt::format("--ntasks={}", launch.nodes * launch.tasks_per_node),
            fmt::format("--ntasks-per-node={}", launch.tasks_per_node),
            // One failed rank ends the others, as locally.
            "--kill-on-bad-exit=1"};
  }
  if (pyxis) {
    fs::path log_pattern = store::RunTree(launch.run_dir).user_logs() / "std_log_rank_%t.txt";
    append(argv, {"--container-image=" + launch.container->image,
                  fmt::format("--container-mounts={0}:{0}", launch.shared_dir.string()),
                  "--container-workdir=" + launch.working_dir.string(),
                  // srun writes each task's output itself, from outside the
                  // container: the per-rank logs without amlrun inside.
                  "--output=" + log_pattern.string(), "--error=" + log_pattern.string(),
                  "--open-mode=append", "bash", "-c", pyxis_rank_script(launch), "amlrun-rank"});
    append(argv, launch.program);
    return argv;
  }
  append(argv, rank_exec(launch));
  if (apptainer) {
    argv.insert(argv.end(), {"apptainer", "exec", "--bind", launch.shared_dir.string(), "--pwd",
                             launch.working_dir.string()});
    if (launch.gpus) argv.push_back("--nv");
    argv.push_back(launch.container->image);
  }
  append(argv, launch.program);
  return argv;
}

launch::TensorflowCluster slurm_tensorflow_cluster(const std::vector<std::string>& nodes,
                                                   int tasks_per_node, int master_port,
                                                   int worker_count) {
  std::vector<std::string> addresses;
  for (const auto& node : nodes) {
    for (int local_rank = 0; local_rank < tasks_per_node; ++local_rank) {
      // Within [20000, 60000), as MASTER_PORT.
      int port = 20000 + (master_port + 1 + local_rank - 20000) % 40000;
      addresses.push_back(fmt::format("{}:{}", node, port));
    }
  }
  return launch::tensorflow_cluster(addresses, worker_count);
}

std::string mpirun_hostfile(const std::vector<std::string>& nodes, int slots_per_node) {
  std::string text;
  for (const auto& node : nodes) text += fmt::format("{} slots={}\n", node, slots_per_node);
  return text;
}

bool srun_offers_pmix(const std::string& mpi_list_output) {
  // "MPI plugin types are...\n\tpmix\n\tnone\n..." (older Slurm: "srun: pmix").
  for (std::size_t start = 0; start < mpi_list_output.size();) {
    std::size_t end = mpi_list_output.find('\n', start);
    if (end == std::string::npos) end = mpi_list_output.size();
    std::string_view line(mpi_list_output.data() + start, end - start);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    if (line.rfind("srun: ", 0) == 0) line.remove_prefix(6);
    if (line.rfind("pmix", 0) == 0) return true;
    start = end + 1;
  }
  return false;
}

}  // namespace amlrun::compute
