#include "lib/launch/rank_environment.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include "lib/launch/command_script.hpp"
#include "lib/store/run_layout.hpp"
#include "lib/util/hash.hpp"
#include "lib/util/process.hpp"

namespace amlrun::launch {

std::vector<std::string> run_environment(const RunContext& context,
                                         std::vector<std::string> environment) {
  using util::set_env;
  if (!util::get_env(environment, "PYTHONUNBUFFERED")) {
    bool user_sets_it = false;
    for (const auto& [k, v] : context.user_variables) user_sets_it |= k == "PYTHONUNBUFFERED";
    if (!user_sets_it) set_env(environment, "PYTHONUNBUFFERED", "1");
  }
  for (const auto& [name, value] : context.user_variables) set_env(environment, name, value);
  set_env(environment, "AMLRUN_RUN_ID", context.run_id);
  set_env(environment, "AMLRUN_EXPERIMENT", context.experiment);
  set_env(environment, "AMLRUN_WORKSPACE", context.workspace_root.string());
  set_env(environment, "AMLRUN_OUTPUTS_DIR", context.outputs_dir.string());
  set_env(environment, "AMLRUN_LOGS_DIR", context.logs_dir.string());
  for (const auto& [name, value] : context.inputs) {
    set_env(environment, input_variable(name), value);
    set_env(environment, "AZURE_ML_INPUT_" + name, value);  // what Azure ML scripts read
  }
  for (const auto& [name, value] : context.outputs) {
    set_env(environment, output_variable(name), value);
    set_env(environment, "AZURE_ML_OUTPUT_" + name, value);
  }
  if (!context.python_shim.empty()) {
    auto path = util::get_env(environment, "PYTHONPATH");
    std::string shim = context.python_shim.string();
    set_env(environment, "PYTHONPATH", path && !path->empty() ? shim + ":" + *path : shim);
  }
  if (!context.backend.empty()) set_env(environment, "AMLRUN_DISTRIBUTED_BACKEND", context.backend);
  if (!context.tracking_uri.empty()) {
    set_env(environment, k_tracking_base_variable, context.tracking_uri);
    // Without a rank (a process that is not one: mpirun, a launcher) the
    // URI counts as rank 0's; each rank gets its own below.
    set_env(environment, "MLFLOW_TRACKING_URI", rank_tracking_uri(context.tracking_uri, 0));
    set_env(environment, "MLFLOW_TRACKING_TOKEN", context.tracking_token);
    set_env(environment, "MLFLOW_RUN_ID", context.run_id);
    set_env(environment, "MLFLOW_EXPERIMENT_ID", context.tracking_experiment_id);
    set_env(environment, "MLFLOW_EXPERIMENT_NAME", context.experiment);
  }
  return environment;
}

std::string rank_tracking_uri(const std::string& base, int rank) {
  return fmt::format("{}/rank/{}", base, rank);
}

void add_rank_environment(std::vector<std::string>& environment, const RunContext& context,
                          int rank) {
  using util::set_env;
  set_env(environment, "AMLRUN_METRICS_FILE",
          store::RunTree(context.run_dir).rank_metrics(rank).string());
  if (!context.tracking_uri.empty()) {
    set_env(environment, "MLFLOW_TRACKING_URI", rank_tracking_uri(context.tracking_uri, rank));
  }
  if (context.distribution == spec::DistributionType::none) return;
  int per_node = context.processes_per_instance;
  set_env(environment, "MASTER_ADDR", context.master_address);
  set_env(environment, "MASTER_PORT", std::to_string(context.master_port));
  set_env(environment, "WORLD_SIZE", std::to_string(context.world_size()));
  set_env(environment, "RANK", std::to_string(rank));
  set_env(environment, "LOCAL_RANK", std::to_string(rank % per_node));
  set_env(environment, "LOCAL_WORLD_SIZE", std::to_string(per_node));
  set_env(environment, "NODE_RANK", std::to_string(rank / per_node));
  set_env(environment, "GROUP_RANK", std::to_string(rank / per_node));
  if (context.distribution == spec::DistributionType::tensorflow) {
    set_env(environment, "TF_CONFIG", tensorflow_config(context.tensorflow, rank));
  }
}

static bool port_is_free(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return true;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_ANY);
  bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return free;
}

static int next_port(int port) {
  return 20000 + (port + 1 - 20000) % 40000;  // stays in [20000, 60000)
}

std::vector<int> derive_process_ports(int master_port, int count) {
  std::vector<int> ports;
  int candidate = master_port;
  // Tries a bounded number of ports, so a machine with every port taken
  // ends in ports that fail to bind (a rank's clear error), never a hang.
  for (int attempt = 0; static_cast<int>(ports.size()) < count && attempt < 40000; ++attempt) {
    candidate = next_port(candidate);
    if (candidate != master_port && port_is_free(candidate)) ports.push_back(candidate);
  }
  while (static_cast<int>(ports.size()) < count) {
    candidate = next_port(candidate);
    ports.push_back(candidate);
  }
  return ports;
}

int derive_master_port(const std::string& run_id, bool probe_free) {
  // 29500 is torch's default; spread runs over [20000, 60000) so concurrent
  // runs on one machine don't collide.
  std::string digest = util::sha256_hex(run_id);
  unsigned long value = std::stoul(digest.substr(0, 8), nullptr, 16);
  int port = 20000 + static_cast<int>(value % 40000);
  if (!probe_free) return port;
  for (int attempt = 0; attempt < 200; ++attempt) {
    int candidate = 20000 + (port - 20000 + attempt) % 40000;
    if (port_is_free(candidate)) return candidate;
  }
  return port;
}

}  // namespace amlrun::launch
