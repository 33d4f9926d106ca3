#pragma once
// A sweep's trial as a run: its id (derived from the sweep's, so a resumed
// controller finds the run it created), the job it runs (the sweep's job
// with the trial's values) and its record (a child run of the sweep).
#include <cstdint>
#include <string>

#include "lib/spec/job_spec.hpp"
#include "lib/store/run_record.hpp"
#include "lib/sweep/search_space.hpp"

namespace amlrun::compute {

// "<sweep id>_<k>", as Azure ML names a sweep's child runs.
std::string trial_id(const std::string& sweep_id, std::uint64_t k);

// The sweep's job for one trial: no sweep settings; AZUREML_SWEEP_<NAME> for
// every value (a command's ${{search_space.NAME}} refers to it); a trainer's
// ${{search_space.NAME}} arguments replaced by the values (argv reaches no
// shell); the trial timeout as the job's own timeout when it is shorter.
spec::JobSpec trial_job(const spec::JobSpec& sweep_job, const sweep::Assignment& values);

// A new trial's record, before the store creates it: what the sweep's record
// says about snapshot, environment and compute, and the sweep as parent.
store::RunRecord trial_record(const store::RunRecord& sweep, const spec::JobSpec& trial,
                              std::uint64_t k, const std::string& target_type);

// "lr=0.01 batch_size=64", for the sweep's log lines.
std::string describe_values(const sweep::Assignment& values);

}  // namespace amlrun::compute
