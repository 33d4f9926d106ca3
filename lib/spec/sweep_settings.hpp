#pragma once
// What a `type: sweep` job says about the search, read from the job file
// with the same diagnostics as every other key (file:line:col, key path,
// did-you-mean, all errors at once): search_space, sampling_algorithm,
// objective, early_termination and limits, and the combinations that
// cannot work. The trial and the controller that runs it come later.
#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "lib/spec/diagnostics.hpp"
#include "lib/spec/reader.hpp"
#include "lib/sweep/policy.hpp"
#include "lib/sweep/sampler.hpp"
#include "lib/sweep/search_space.hpp"

namespace amlrun::spec {

enum class SamplingAlgorithm { random, grid, bayesian };

struct SweepLimits {
  // Azure's default; a grid also stops when it is exhausted.
  std::int64_t max_total_trials = 1000;
  std::optional<std::int64_t> max_concurrent_trials;  // unset: the target decides
  std::optional<double> timeout;                      // seconds, the whole sweep
  std::optional<double> trial_timeout;                // seconds, each trial
};

struct SweepSettings {
  sweep::SearchSpace search_space;
  SamplingAlgorithm algorithm = SamplingAlgorithm::random;
  std::optional<std::uint64_t> seed;  // random: recorded when drawn
  sweep::RandomRule rule = sweep::RandomRule::random;
  sweep::Goal goal = sweep::Goal::minimize;
  std::string primary_metric;
  std::optional<sweep::Policy> early_termination;
  SweepLimits limits;
};

// Reads the sweep keys of `root` (declaring them); nullopt when any of them
// has an error, which is then in `diagnostics`.
std::optional<SweepSettings> read_sweep_settings(MapReader& root, Diagnostics& diagnostics);

// The settings in the job file's own shape (stored in job.json), and back:
// the JSON is read by read_sweep_settings; util::InfraError naming `origin`
// when it does not read.
nlohmann::ordered_json to_json(const SweepSettings& settings);
// A trial's value as JSON: a number stays a number, an integer an integer.
nlohmann::ordered_json to_json(const sweep::Value& value);
SweepSettings sweep_settings_from_json(const nlohmann::ordered_json& json,
                                       const std::string& origin);

}  // namespace amlrun::spec
