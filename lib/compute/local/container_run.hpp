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

namespace amlrun::compute {

struct ContainerPlan {
  env::ContainerRun base;  // runtime, image, shm size, gpu
  std::string run_id;
  std::string workspace_root;
  std::filesystem::path working_dir;  // read-write; holds ./outputs and ./logs
  std::filesystem::path metrics_dir;  // read-write: amlrun's metrics files
  std::filesystem::path inputs_dir;   // read-only, when the run has inputs
  // Read-only: the originals local inputs link to, amlrun's azureml shim.
  std::vector<std::filesystem::path> read_only;
};

// The runtime's argv that runs `program` in the run's container, named
// env::container_name(run_id, rank) (rank -1: the run's only container; no
// name at all for ranks mpirun starts, which share one argv). Variables of
// `environment` that the supervisor did not inherit itself (the run's, the
// job's) are passed by name: their values stay off the command line.
std::vector<std::string> container_command(const ContainerPlan& plan,
                                           const std::vector<std::string>& program,
                                           const std::vector<std::string>& environment, int rank,
                                           bool named);

// Ends and removes the run's containers; failures are returned as a line for
// the system log, never thrown (the run's result matters more).
std::string end_containers(const ContainerPlan& plan);

}  // namespace amlrun::compute
