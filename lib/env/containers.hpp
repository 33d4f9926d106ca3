#pragma once
// A run's containers (docker, podman): named after the run and labelled with
// the run id and the workspace, so that whoever ends a run (its supervisor,
// the refresh that finds the supervisor dead, `amlrun doctor`) finds them by
// label and ends them, whatever started them.
#include <string>
#include <vector>

namespace amlrun::env {

inline constexpr const char* k_run_label = "org.amlrun.run";
inline constexpr const char* k_workspace_label = "org.amlrun.workspace";

// amlrun-<run id> (run ids are letters, digits, '_' and '-': a valid
// container name); amlrun-<run id>-rank<r> when each rank has its own.
std::string container_name(const std::string& run_id, int rank = -1);

struct RunContainer {
  std::string id;
  std::string name;
  std::string run_id;  // the value of k_run_label
  bool running = false;
};

// The containers, in any state, labelled with this workspace (and run, when
// `run_id` is given). Throws util::InfraError when the runtime does not
// answer, naming the command and what it said.
std::vector<RunContainer> list_run_containers(const std::string& runtime,
                                              const std::string& workspace_root,
                                              const std::string& run_id = "");

// Ends each container (`<runtime> kill`) and removes it (`<runtime> rm
// --force`): a container that already stopped or went is not an error.
void remove_containers(const std::string& runtime, const std::vector<RunContainer>& containers);

// Both: ends and removes every container of the run; returns how many there were.
std::size_t end_run_containers(const std::string& runtime, const std::string& workspace_root,
                               const std::string& run_id);

}  // namespace amlrun::env
