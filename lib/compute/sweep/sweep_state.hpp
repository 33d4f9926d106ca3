#pragma once
// The sweep's part of its run record (RunRecord::target), typed: what the
// controller records so that another amlrun can signal it, resume it after
// it died, and name the best trial without reading every trial.
#include <sys/types.h>

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "lib/store/run_record.hpp"

namespace amlrun::compute {

struct SweepState {
  std::optional<pid_t> controller_pid;  // set once a controller started
  int controller_starts = 0;            // 1, plus one per resume
  std::uint64_t seed = 0;               // the sampler's (given or drawn)
  std::string best_trial;               // "" until a trial logged the metric
  std::optional<double> best_value;
};

SweepState sweep_state_from_json(const nlohmann::json& json);

// The best trial's run id; InputError when the sweep has none (yet), saying
// why, for commands that take a sweep where a run is meant (model register).
std::string best_trial_of(const store::RunRecord& sweep);
nlohmann::json to_json(const SweepState& state);

}  // namespace amlrun::compute
