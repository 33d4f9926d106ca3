#pragma once
// The record side of a Slurm run's tracking endpoint. The driver on the
// first node has no workspace, so what the endpoint would write into the run
// store (params, tags, nested runs and their ends) is appended to a journal
// in the shared run directory instead, artifacts/logs/system/
// tracking_journal.jsonl, which is collected home with the logs; the
// submitting side merges it into the run store (merge_tracking_journal).
// Nested runs' metrics and artifacts go below artifacts/logs/nested_runs/
// <child id>/ (a store::RunTree each) and move into their own runs then.
//
// The journal: a header line {"amlrun_tracking_journal": 1, "run": <id>},
// then one JSON object per line, each appended in one write and fsynced
// before the request is answered:
//   {"op": "params", "run": id, "values": [[key, value], ...]}
//   {"op": "tags",   "run": id, "set": [[key, value], ...], "remove": [key, ...]}
//   {"op": "create", "run": id, "experiment": e, "name": n, "tags": [[k, v], ...], "at": time}
//   {"op": "end",    "run": id, "state": "Completed", "reason": r, "at": time}
// A line that cannot be read is reported and skipped; the rest is merged.
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/store/run_record.hpp"
#include "lib/store/run_store.hpp"
#include "lib/tracking/run_records.hpp"

namespace amlrun::tracking {

namespace fs = std::filesystem;

inline constexpr int k_tracking_journal_version = 1;

// Relative to a run directory (store::RunTree root).
std::string tracking_journal_relative();  // artifacts/logs/system/tracking_journal.jsonl
std::string nested_runs_relative();       // artifacts/logs/nested_runs

// What the endpoint of a run served from `run_dir` (a Slurm shared run
// directory) writes to: `served` is the run's record as the driver knows it.
std::unique_ptr<RunRecords> journal_run_records(const fs::path& run_dir, store::RunRecord served);

struct JournalContents {
  std::string run_id;                   // from the header
  std::vector<nlohmann::json> entries;  // in order, each checked for its fields
  std::vector<std::string> problems;    // "<name>:<line>: ..." for what was skipped
};

// Parses a journal's text; `name` is how problems name the file.
JournalContents read_tracking_journal(std::string_view text, const std::string& name);

// Merges the journal of `run` (collected into `run_dir`, the workspace's
// runs/<id>/) into the store: params and tags into the run's record (a param
// already there with another value is reported, not changed), nested runs
// created as child runs with their metrics and artifacts. Safe to repeat
// (a collection that was interrupted): what is merged already is left as
// it is. Returns what could not be merged, for the run's warnings.
std::vector<std::string> merge_tracking_journal(store::RunStore& store, const store::RunRecord& run,
                                                const fs::path& run_dir);

}  // namespace amlrun::tracking
