#pragma once
// What every process of a run sees (DESIGN.md "Inside a run"): the AMLRUN_*
// variables, the torch contract for distributed runs, the input and output
// variables, and the job's own environment_variables.
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "lib/launch/tensorflow_config.hpp"
#include "lib/spec/job_spec.hpp"

namespace amlrun::launch {

namespace fs = std::filesystem;

struct RunContext {
  std::string run_id;
  std::string experiment;
  fs::path workspace_root;
  fs::path run_dir;      // the run's directory (store::RunTree): captured logs live there
  fs::path working_dir;  // the run's wd/
  fs::path outputs_dir;  // wd/outputs (AMLRUN_OUTPUTS_DIR)
  fs::path logs_dir;     // wd/logs (AMLRUN_LOGS_DIR): the job's own logs
  std::vector<std::pair<std::string, std::string>> inputs;   // name → path or literal value
  std::vector<std::pair<std::string, std::string>> outputs;  // name → path
  std::vector<std::pair<std::string, std::string>> user_variables;
  spec::DistributionType distribution = spec::DistributionType::none;
  std::string backend;  // estimator's distributed_backend, exported as AMLRUN_DISTRIBUTED_BACKEND
  int instance_count = 1;
  int processes_per_instance = 1;
  std::string master_address = "127.0.0.1";
  int master_port = 0;
  // distribution type tensorflow: every rank's address, for TF_CONFIG.
  TensorflowCluster tensorflow;
  int world_size() const { return instance_count * processes_per_instance; }
  // The run's MLflow tracking endpoint (lib/tracking), when its owner serves
  // one: http://host:port, to which each rank's URI adds /rank/<r>.
  std::string tracking_uri;
  std::string tracking_token;
  std::string tracking_experiment_id;
  // amlrun's azureml shim (launch::python_shim_dir), put first on
  // PYTHONPATH; empty: none.
  fs::path python_shim;
};

// The variable that carries RunContext::tracking_uri to ranks that a
// launcher starts (mpirun, srun): `amlrun _rank-exec` turns it into the
// rank's MLFLOW_TRACKING_URI.
inline constexpr const char* k_tracking_base_variable = "AMLRUN_TRACKING_URI";
// base + "/rank/<r>".
std::string rank_tracking_uri(const std::string& base, int rank);

// The run-wide variables added to `inherited` (the submitting shell's
// environment). User variables win over inherited ones; amlrun's own win over
// both (MLFLOW_RUN_ID, MLFLOW_EXPERIMENT_ID/NAME, MLFLOW_TRACKING_TOKEN and
// MLFLOW_TRACKING_URI too, when the run has a tracking endpoint: as on Azure
// ML, a job's metrics go to the run whatever the job's settings say). PYTHONUNBUFFERED=1 unless the
// job sets it, so logs stream live. The azureml shim goes first on
// PYTHONPATH, before the job's own entries (which stay): the shim itself
// steps aside for a real azureml-core further on the path.
std::vector<std::string> run_environment(const RunContext& context,
                                         std::vector<std::string> inherited);

// Adds the per-rank variables (RANK, LOCAL_RANK, NODE_RANK, ... and
// AMLRUN_METRICS_FILE, MLFLOW_TRACKING_URI; TF_CONFIG for distribution type tensorflow). The
// torch contract is set only for distributed runs, as on hosted platforms, so single-process
// scripts don't try to initialise
// a process group.
void add_rank_environment(std::vector<std::string>& environment, const RunContext& context,
                          int rank);

// A port for MASTER_PORT derived from the run id (stable for a run), moved to
// the next free one when taken on this machine.
int derive_master_port(const std::string& run_id, bool probe_free = true);

// The variable through which a launcher hands the TensorFlow cluster to
// ranks that learn their own rank only when they start (`_rank-exec` on
// Slurm turns it into TF_CONFIG).
inline constexpr const char* k_tensorflow_cluster_variable = "AMLRUN_TENSORFLOW_CLUSTER";

// `count` ports for the processes of a tensorflow run on this machine,
// found the way MASTER_PORT is: from the port after `master_port` upwards,
// each free here when probed, none equal to master_port.
std::vector<int> derive_process_ports(int master_port, int count);

}  // namespace amlrun::launch
