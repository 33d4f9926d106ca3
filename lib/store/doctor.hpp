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
  // The damaged index was set aside: the checks that follow refill a fresh one.
  bool index_rebuilt = false;
  std::size_t unresolved() const {
    std::size_t count = 0;
    for (const auto& finding : findings) count += !finding.repaired;
    return count;
  }
};

// The index file itself, before anything opens it for use: a file SQLite
// cannot read (not a database, damaged pages) is a finding; with `repair` it
// is set aside (set_aside_damaged_index: renamed, kept) so that the RunStore
// opened next starts a fresh index, which check_runs and the registry's
// check refill from the run folders and model manifests. Returns false when
// the index is damaged and stays so (no `repair`): nothing else can be checked.
bool check_index(const workspace::Workspace& workspace, bool repair, DoctorReport& report);

// Runs and their metrics. With `repair`, repairable findings are fixed.
void check_runs(RunStore& store, bool repair, DoctorReport& report);

// Leftovers younger than this may belong to a command still running.
inline constexpr int k_leftover_age_seconds = 60;

}  // namespace amlrun::store
