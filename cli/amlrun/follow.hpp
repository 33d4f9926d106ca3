#pragma once
// Following a run to its end on the terminal: shared by submit and stream.
#include <string>

#include "cli/amlrun/commands.hpp"
#include "lib/compute/compute_target.hpp"
#include "lib/store/run_store.hpp"

namespace amlrun::cli {

enum class OutputFormat { text, json, yaml };

struct FollowOptions {
  bool all_ranks = false;
  OutputFormat output = OutputFormat::text;
  // No progress lines of amlrun's own (states, notes); warnings and the
  // run's ending are still said.
  bool quiet = false;
  // A sweep: every trial's log too, prefixed "[trial K] " (the sweep's own
  // lines "[sweep] ").
  bool all_trials = false;
};

// Streams logs until the run is terminal (or Ctrl-C: 130, the run goes on),
// prints the summary (text) or the record (json) and returns the exit code.
// `target`: the one that took the run (submit), else the run's own.
ExitCode follow_run(store::RunStore& store, const std::string& run_id, const FollowOptions& options,
                    std::unique_ptr<compute::ComputeTarget> target = nullptr);

// The record as `show` and `submit --output json` print it, with paths.
nlohmann::ordered_json run_json(const store::RunStore& store, const store::RunRecord& record);

}  // namespace amlrun::cli
