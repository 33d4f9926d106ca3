#pragma once
// `amlrun doctor`: compares the index with what is on disk and, asked to,
// brings the index in line. run.json files and model manifests are the
// truth; the index is rebuilt from them, never the other way round, and
// nothing a user may still want (a corrupt run.json, a changed manifest) is
// deleted: those are reported with what to do.
#include <string>
#include <vector>

#include "lib/store/run_store.hpp"

namespace amlrun::store {

struct Finding {
  std::string problem;  // "run X is in the index but runs/X/run.json is missing"
  std::string action;   // what --repair does, or what the user should do
  bool repairable = false;
  bool repaired = false;
};

struct DoctorReport {
  std::vector<Finding> findings;
  std::size_t runs_checked = 0;
  std::size_t models_checked = 0;
  std::size_t unresolved() const {
    std::size_t count = 0;
    for (const auto& finding : findings) count += !finding.repaired;
    return count;
  }
};

// Runs and their metrics. With `repair`, repairable findings are fixed.
void check_runs(RunStore& store, bool repair, DoctorReport& report);

// Leftovers younger than this may belong to a command still running.
inline constexpr int k_leftover_age_seconds = 60;

}  // namespace amlrun::store
