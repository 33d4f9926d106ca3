#include "lib/compute/sweep/sweep_summary.hpp"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <variant>

#include <fmt/format.h>

#include "lib/spec/job_spec.hpp"
#include "lib/store/metrics.hpp"
#include "lib/store/run_layout.hpp"
#include "lib/sweep/sampler.hpp"
#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"

namespace amlrun::compute {

std::vector<double> primary_metric_values(const store::RunStore& store, const std::string& run_id,
                                          const std::string& metric) {
  auto points = store::metric_points(store, run_id, metric);
  if (points.empty()) return {};
  int rank = points.front().rank;
  for (const auto& point : points) rank = std::min(rank, point.rank);
  std::vector<double> values;
  for (const auto& point : points) {
    if (point.rank == rank) values.push_back(point.value);
  }
  return values;
}

SweepSummary summarize_sweep(const store::RunStore& store, const spec::SweepSettings& settings,
                             const SweepJournalContents& journal) {
  SweepSummary out;
  for (const auto& entry : journal.trials) {
    TrialSummary trial;
    trial.k = entry.k;
    trial.id = entry.id;
    trial.params = entry.params;
    trial.state = "Queued";
    try {
      auto record = store.load(entry.id);
      trial.state = store::to_string(record.state);
      trial.started = record.started_at;
      trial.ended = record.ended_at;
      trial.reason = record.failure_reason;
    } catch (const util::Error&) {
      // Not created yet (the controller is about to): Queued.
    }
    for (const auto& stop : journal.stops) {
      if (stop.id == entry.id && trial.state == "Canceled") trial.reason = stop.reason;
    }
    auto values = primary_metric_values(store, entry.id, settings.primary_metric);
    trial.reports = static_cast<std::int64_t>(values.size());
    double best = sweep::best_of(settings.goal, values, values.size());
    if (!std::isnan(best)) trial.objective = best;
    ++out.counts[trial.state];
    out.trials.push_back(std::move(trial));
  }
  std::stable_sort(out.trials.begin(), out.trials.end(),
                   [&](const TrialSummary& a, const TrialSummary& b) {
                     if (a.objective && b.objective) {
                       return sweep::better(settings.goal, *a.objective, *b.objective);
                     }
                     return a.objective.has_value() && !b.objective.has_value();
                   });
  if (!out.trials.empty() && out.trials.front().objective) out.best = 0;
  return out;
}

spec::SweepSettings sweep_settings_of(const store::RunStore& store, const store::RunRecord& sweep) {
  store::RunLayout layout(store.run_dir(sweep.id));
  auto job =
      spec::job_spec_from_json(nlohmann::ordered_json::parse(util::read_file(layout.job_spec())));
  if (!job.sweep) {
    throw util::InfraError(fmt::format("{} has no sweep settings", layout.job_spec().string()));
  }
  return *job.sweep;
}

SweepSummary summarize_sweep(const store::RunStore& store, const store::RunRecord& sweep) {
  store::RunLayout layout(store.run_dir(sweep.id));
  return summarize_sweep(store, sweep_settings_of(store, sweep),
                         read_sweep_journal(layout.sweep_journal()));
}

nlohmann::ordered_json to_json(const TrialSummary& trial) {
  nlohmann::ordered_json params = nlohmann::ordered_json::object();
  for (const auto& [name, value] : trial.params) params[name] = spec::to_json(value);
  nlohmann::ordered_json j;
  j["id"] = trial.id;
  j["trial"] = trial.k;
  j["state"] = trial.state;
  j["params"] = params;
  j["objective"] =
      trial.objective ? nlohmann::ordered_json(*trial.objective) : nlohmann::ordered_json(nullptr);
  j["reports"] = trial.reports;
  j["started"] = trial.started;
  j["ended"] = trial.ended;
  j["reason"] = trial.reason;
  return j;
}

std::vector<std::pair<std::string, std::string>> describe_settings(
    const spec::SweepSettings& settings, std::uint64_t seed) {
  std::vector<std::pair<std::string, std::string>> out;
  switch (settings.algorithm) {
    case spec::SamplingAlgorithm::random:
      out.emplace_back(
          "sampling",
          fmt::format("random ({}, seed {})",
                      settings.rule == sweep::RandomRule::sobol ? "sobol" : "random", seed));
      break;
    case spec::SamplingAlgorithm::grid:
      out.emplace_back("sampling", fmt::format("grid ({} combinations)",
                                               sweep::grid_size(settings.search_space)));
      break;
    case spec::SamplingAlgorithm::bayesian: {
      // What gp.hpp's bayesian_propose picks for this space.
      const auto kinds = sweep::dimension_options(settings.search_space);
      const bool choice =
          std::any_of(kinds.begin(), kinds.end(), [](std::size_t count) { return count > 0; });
      out.emplace_back(
          "sampling",
          fmt::format("bayesian ({}, seed {})",
                      choice ? "tree-structured Parzen estimator" : "Gaussian process", seed));
      break;
    }
  }
  out.emplace_back(
      "objective",
      fmt::format("{} {}", settings.goal == sweep::Goal::maximize ? "maximize" : "minimize",
                  settings.primary_metric));
  if (settings.early_termination) {
    std::visit(
        [&](const auto& p) {
          using T = std::decay_t<decltype(p)>;
          std::string what;
          if constexpr (std::is_same_v<T, sweep::BanditPolicy>) {
            what = p.slack_factor ? fmt::format("bandit (slack_factor {}", *p.slack_factor)
                                  : fmt::format("bandit (slack_amount {}", *p.slack_amount);
          } else if constexpr (std::is_same_v<T, sweep::MedianStoppingPolicy>) {
            what = "median_stopping (";
          } else {
            what = fmt::format("truncation_selection ({}%", p.truncation_percentage);
          }
          if (what.back() != '(') what += ", ";
          out.emplace_back(
              "early stop",
              fmt::format("{}every {} interval{} after {})", what, p.evaluation_interval,
                          p.evaluation_interval == 1 ? "" : "s", p.delay_evaluation));
        },
        *settings.early_termination);
  }
  std::string limits = fmt::format("{} trials", settings.limits.max_total_trials);
  if (settings.limits.max_concurrent_trials) {
    limits += fmt::format(", {} at once", *settings.limits.max_concurrent_trials);
  }
  if (settings.limits.timeout) limits += fmt::format(", timeout {} s", *settings.limits.timeout);
  if (settings.limits.trial_timeout) {
    limits += fmt::format(", trial timeout {} s", *settings.limits.trial_timeout);
  }
  out.emplace_back("limits", limits);
  return out;
}

nlohmann::ordered_json to_json(const SweepSummary& summary, const spec::SweepSettings& settings,
                               std::uint64_t seed) {
  nlohmann::ordered_json j = spec::to_json(settings);
  if (settings.algorithm != spec::SamplingAlgorithm::grid) {
    j["sampling_algorithm"]["seed"] = seed;
  }
  nlohmann::ordered_json counts = nlohmann::ordered_json::object();
  for (const auto& [state, count] : summary.counts) counts[state] = count;
  j["counts"] = counts;
  nlohmann::ordered_json trials = nlohmann::ordered_json::array();
  for (const auto& trial : summary.trials) trials.push_back(to_json(trial));
  j["trials"] = trials;
  j["best_trial"] = summary.best ? nlohmann::ordered_json(summary.trials[*summary.best].id)
                                 : nlohmann::ordered_json(nullptr);
  return j;
}

}  // namespace amlrun::compute
