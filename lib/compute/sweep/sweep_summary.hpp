#pragma once
// What a sweep is at a moment, for `amlrun show`, `amlrun stream` and the
// controller itself: each trial (from the journal, its run record and its
// metrics) with its objective, sorted best first, and the best trial.
//
// A trial's objective is the best value of the primary metric it ever
// logged (lowest when minimising, highest when maximising), on its lowest
// rank that logged it; a trial that never logged it has none and is never
// best. NaN counts as no value.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/compute/sweep/sweep_journal.hpp"
#include "lib/spec/sweep_settings.hpp"
#include "lib/store/run_store.hpp"

namespace amlrun::compute {

struct TrialSummary {
  std::uint64_t k = 0;
  std::string id;
  std::string state;  // the record's state; "Queued" before its record exists
  sweep::Assignment params;
  std::optional<double> objective;
  std::int64_t reports = 0;  // times the primary metric was logged
  std::string started;
  std::string ended;
  std::string reason;  // an early termination's, else the record's failure reason
};

struct SweepSummary {
  std::vector<TrialSummary> trials;   // best objective first; none last, by k
  std::optional<std::size_t> best;    // index into trials
  std::map<std::string, int> counts;  // by state
};

// The primary metric's values of a run, in the order logged, from its lowest
// rank that logged it.
std::vector<double> primary_metric_values(const store::RunStore& store, const std::string& run_id,
                                          const std::string& metric);

SweepSummary summarize_sweep(const store::RunStore& store, const spec::SweepSettings& settings,
                             const SweepJournalContents& journal);

// The same, read from a sweep run's directory (job.json and the journal).
SweepSummary summarize_sweep(const store::RunStore& store, const store::RunRecord& sweep);
spec::SweepSettings sweep_settings_of(const store::RunStore& store, const store::RunRecord& sweep);

nlohmann::ordered_json to_json(const TrialSummary& trial);

// The search as label and text, for `amlrun show`: ("sampling", "random
// (sobol, seed 42)"), ("objective", "minimize val_loss"), ...
std::vector<std::pair<std::string, std::string>> describe_settings(
    const spec::SweepSettings& settings, std::uint64_t seed);

// `show --output json`'s "sweep": the settings as the job file writes them
// (with the seed used), counts by state, the trials sorted by objective and
// the best trial's id (null when none).
nlohmann::ordered_json to_json(const SweepSummary& summary, const spec::SweepSettings& settings,
                               std::uint64_t seed);

}  // namespace amlrun::compute
