#include "lib/compute/sweep/sweep_state.hpp"

#include <fmt/format.h>

#include "lib/util/error.hpp"

namespace amlrun::compute {

SweepState sweep_state_from_json(const nlohmann::json& json) {
  SweepState state;
  if (!json.is_object()) return state;
  if (json.contains("controller_pid") && json["controller_pid"].is_number_integer()) {
    state.controller_pid = json["controller_pid"].get<pid_t>();
  }
  state.controller_starts = json.value("controller_starts", 0);
  state.seed = json.value("seed", std::uint64_t{0});
  state.best_trial = json.value("best_trial", "");
  if (json.contains("best_value") && json["best_value"].is_number()) {
    state.best_value = json["best_value"].get<double>();
  }
  return state;
}

std::string best_trial_of(const store::RunRecord& sweep) {
  auto state = sweep_state_from_json(sweep.target);
  if (state.best_trial.empty()) {
    throw util::InputError(fmt::format(
        "sweep {} has no best trial{}: no trial has logged its primary metric; give a trial's "
        "run id (amlrun show {} lists them)",
        sweep.id, store::is_terminal(sweep.state) ? "" : " yet", sweep.id));
  }
  if (!store::is_terminal(sweep.state)) {
    throw util::InputError(fmt::format(
        "sweep {} is still {}: its best trial may change; wait for it to end, or give the trial's "
        "run id ({} is the best so far)",
        sweep.id, store::to_string(sweep.state), state.best_trial));
  }
  return state.best_trial;
}

nlohmann::json to_json(const SweepState& state) {
  nlohmann::json json = nlohmann::json::object();
  if (state.controller_pid) json["controller_pid"] = *state.controller_pid;
  json["controller_starts"] = state.controller_starts;
  json["seed"] = state.seed;
  if (!state.best_trial.empty()) json["best_trial"] = state.best_trial;
  if (state.best_value) json["best_value"] = *state.best_value;
  return json;
}

}  // namespace amlrun::compute
