#pragma once
// Container mode of a local run (environments.runtime docker or podman): the
// command line each rank's program runs through, and the end of the run's
// containers. Paths are mounted where they are on the host, so a path the
// run sees (working directory, outputs, logs, inputs) is the same inside and
// out; the container runs as the submitting user.
#include <filesystem>
#include <string>
#include <vector>

#include "lib/env/runtime.hpp"
#include "lib/launch/rank_environment.hpp"
#include "lib/store/run_layout.hpp"

namespace amlrun::compute {

struct ContainerPlan {
  env::ContainerRun base;  // runtime, image, shm size, gpu
  std::string run_id;
  std::string workspace_root;
  std::filesystem::path working_dir;    // read-write; holds ./outputs and ./logs
  std::filesystem::path metrics_dir;    // read-write: amlrun's metrics files
  std::filesystem::path inputs_dir;     // read-only, when the run has inputs
  std::filesystem::path user_logs_dir;  // read-write, for mpirun's ranks in the container
  // Read-only: the originals local inputs link to, amlrun's azureml shim.
  std::vector<std::filesystem::path> read_only;
};

// One process: the runtime's argv that runs `program` in the run's
// container, named env::container_name(run_id), removed when it ends
// (`--rm`); the runtime's client forwards signals to it. Variables of
// `environment` that the supervisor did not inherit itself (the run's, the
// job's) are passed by name: their values stay off the command line.
std::vector<std::string> container_command(const ContainerPlan& plan,
                                           const std::vector<std::string>& program,
                                           const std::vector<std::string>& environment);

// Several processes share one container: it is started first (detached,
// idle), each rank enters it with shared_exec_command, and ending the run
// kills and removes it (signals to an exec client do not reach the
// process inside, so an ending kills the container).
std::vector<std::string> shared_start_command(const ContainerPlan& plan);
// Runs shared_start_command; throws util::InfraError with the runtime's words.
void start_shared_container(const ContainerPlan& plan);
std::vector<std::string> shared_exec_command(const ContainerPlan& plan,
                                             const std::vector<std::string>& program,
                                             const std::vector<std::string>& environment);

// distribution mpi: mpirun of the image starts the ranks inside the shared
// container (amlrun's own rank wrapper cannot run there: a fixed sh script
// does its part). Each rank's log and the variables only it gets
// (NAME=value: RANK, AMLRUN_METRICS_FILE, MLFLOW_TRACKING_URI, ...).
struct MpiRank {
  std::filesystem::path log;
  std::vector<std::string> variables;
};
std::vector<std::string> mpirun_in_container(const std::vector<MpiRank>& ranks,
                                             const std::vector<std::string>& program);
// Each rank's log and what add_rank_environment adds to `environment` for it.
std::vector<MpiRank> mpi_ranks(const launch::RunContext& context,
                               const std::vector<std::string>& environment,
                               const store::RunTree& tree);

// SIGTERM to every process in the shared container but its idle keeper
// (`<runtime> exec ... sh -c 'kill -TERM -1'` as the run's user): a signal
// to an exec client does not reach the process it started. Best effort:
// false when the runtime failed (the caller kills the container later).
bool terminate_shared_container(const ContainerPlan& plan);

// Whether the NVIDIA driver's devices are here (`--gpus all` would fail
// without them).
bool host_has_gpus();

// Ends and removes the run's containers; failures are returned as a line for
// the system log, never thrown (the run's result matters more).
std::string end_containers(const ContainerPlan& plan);

}  // namespace amlrun::compute
