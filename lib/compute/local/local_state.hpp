#pragma once
// The local target's part of a run record (RunRecord::target), typed: what
// the supervisor records so that another amlrun can signal it, and end the
// run's processes and seal its files if it dies.
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace amlrun::compute {

struct ProcessGroup {
  pid_t pgid = 0;
  // /proc start time of the leader, to tell it from a later process that
  // reused the pid.
  unsigned long long start_time = 0;
};

struct LocalState {
  std::optional<pid_t> supervisor_pid;  // set once the supervisor started
  std::string working_dir;
  std::vector<ProcessGroup> process_groups;  // set once the ranks started
  std::optional<int> master_port;
  std::optional<std::int64_t> timeout_seconds;  // when the run timed out
  // docker or podman in container mode: whoever finds the supervisor dead
  // ends the run's containers with it (env/containers.hpp).
  std::string container_runtime;
};

LocalState local_state_from_json(const nlohmann::json& json);
nlohmann::json to_json(const LocalState& state);

}  // namespace amlrun::compute
