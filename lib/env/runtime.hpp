#pragma once
// Container runtimes (docker, podman, apptainer): whether one works here,
// and the exact argv to build an environment's image and to run in it.
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace amlrun::env {

struct RuntimeProbe {
  std::string name;
  bool works = false;
  std::string detail;  // why not, in one line ("not installed", the runtime's own error)
};

// Asks the runtime whether it can run containers (`docker info`, `podman
// info`, `apptainer --version`), with a timeout.
RuntimeProbe probe_runtime(const std::string& name);

// The runtime to use: `preferred` if given, else the first of docker, podman,
// apptainer that works. Throws util::InfraError listing what each said when
// none works.
std::string choose_runtime(const std::string& preferred);

// Image names: amlrun-env:<first 16 hex of the hash> (docker, podman) or
// <dir>/amlrun-env-<16 hex>.sif (apptainer).
std::string image_tag(const std::string& hash);
std::string sif_name(const std::string& hash);

// docker/podman build with the host's network (pip reaches the package
// index the way it does on the host; the default bridge may have no route
// out) and the host's proxy variables (build arguments every Dockerfile
// knows without declaring them).
std::vector<std::string> build_command(const std::string& runtime,
                                       const std::filesystem::path& context_dir,
                                       const std::string& hash,
                                       const std::filesystem::path& sif_dir);

struct ContainerRun {
  std::string runtime;
  std::string image;  // a tag for docker/podman, a .sif path for apptainer
  // docker/podman: the container's name, its labels, and "uid:gid" to run
  // as (the submitting user's, so what the job writes is theirs, not root's).
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;
  std::string user;
  std::filesystem::path working_dir;
  // (host path, container path, read-only) mounted at the same place, so
  // paths the run sees are the same inside and out.
  std::vector<std::pair<std::filesystem::path, bool>> mounts;
  std::string shm_size;
  bool gpu = false;
  // Names only: values are passed through the runtime's own environment, so
  // no value ever appears on a command line (docker/podman; apptainer passes
  // the whole environment by itself).
  std::vector<std::string> variables;
  std::vector<std::string> program;
};

std::vector<std::string> run_command(const ContainerRun& run);

// docker/podman: `run --detach` of the container with `sleep infinity` as
// its program (ignoring SIGTERM), for processes that enter it with
// exec_command (several ranks in one container). Its variables and program
// are not used.
std::vector<std::string> start_command(const ContainerRun& run);
// `<runtime> exec` of run.program in the running container run.name, in
// the working directory, as run.user, with run.variables passed by name.
std::vector<std::string> exec_command(const ContainerRun& run);

}  // namespace amlrun::env
