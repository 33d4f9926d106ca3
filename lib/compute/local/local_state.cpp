#include "lib/compute/local/local_state.hpp"

namespace amlrun::compute {

LocalState local_state_from_json(const nlohmann::json& json) {
  LocalState state;
  if (!json.is_object()) return state;
  if (json.contains("supervisor_pid") && json["supervisor_pid"].is_number_integer()) {
    state.supervisor_pid = json["supervisor_pid"].get<pid_t>();
  }
  state.working_dir = json.value("working_dir", "");
  for (const auto& group : json.value("process_groups", nlohmann::json::array())) {
    if (!group.is_object()) continue;
    state.process_groups.push_back(
        {group.value("pgid", pid_t{0}), group.value("start_time", 0ULL)});
  }
  if (json.contains("master_port") && json["master_port"].is_number_integer()) {
    state.master_port = json["master_port"].get<int>();
  }
  if (json.contains("timeout_seconds") && json["timeout_seconds"].is_number_integer()) {
    state.timeout_seconds = json["timeout_seconds"].get<std::int64_t>();
  }
  state.container_runtime = json.value("container_runtime", "");
  return state;
}

nlohmann::json to_json(const LocalState& state) {
  nlohmann::json json = nlohmann::json::object();
  if (state.supervisor_pid) json["supervisor_pid"] = *state.supervisor_pid;
  if (!state.working_dir.empty()) json["working_dir"] = state.working_dir;
  if (!state.process_groups.empty()) {
    json["process_groups"] = nlohmann::json::array();
    for (const auto& group : state.process_groups) {
      json["process_groups"].push_back({{"pgid", group.pgid}, {"start_time", group.start_time}});
    }
  }
  if (state.master_port) json["master_port"] = *state.master_port;
  if (state.timeout_seconds) json["timeout_seconds"] = *state.timeout_seconds;
  if (!state.container_runtime.empty()) json["container_runtime"] = state.container_runtime;
  return json;
}

}  // namespace amlrun::compute
