#include "lib/compute/sweep/trials.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "lib/spec/placeholders.hpp"

namespace amlrun::compute {

std::string trial_id(const std::string& sweep_id, std::uint64_t k) {
  return fmt::format("{}_{}", sweep_id, k);
}

spec::JobSpec trial_job(const spec::JobSpec& sweep_job, const sweep::Assignment& values) {
  spec::JobSpec trial = sweep_job;
  const auto settings = *sweep_job.sweep;
  trial.sweep.reset();
  for (const auto& [name, value] : values) {
    trial.environment_variables.emplace_back(sweep::environment_variable(name), value.str());
  }
  for (auto& argument : trial.argv) {
    argument = spec::substitute_placeholders(argument, [&](const spec::Placeholder& p) {
      if (p.scope != "search_space") return p.text();
      auto found = std::find_if(values.begin(), values.end(),
                                [&](const auto& v) { return v.first == p.name; });
      // A nested parameter of an option this trial did not take: nothing.
      return found == values.end() ? std::string() : found->second.str();
    });
  }
  if (settings.limits.trial_timeout) {
    // Whole seconds, at least one: the owners count in seconds.
    const auto limit =
        std::max<std::int64_t>(1, std::llround(std::ceil(*settings.limits.trial_timeout)));
    if (!trial.timeout_seconds || *trial.timeout_seconds > limit) trial.timeout_seconds = limit;
  }
  return trial;
}

store::RunRecord trial_record(const store::RunRecord& sweep, const spec::JobSpec& trial,
                              std::uint64_t k, const std::string& target_type) {
  store::RunRecord record;
  record.id = trial_id(sweep.id, k);
  record.parent_id = sweep.id;
  record.experiment = sweep.experiment;
  record.display_name = fmt::format("trial {}", k);
  record.tags = sweep.tags;
  record.compute = sweep.compute;
  record.compute_type = target_type;
  record.snapshot_id = sweep.snapshot_id;
  record.snapshot_files = sweep.snapshot_files;
  record.snapshot_bytes = sweep.snapshot_bytes;
  record.environment_hash = sweep.environment_hash;
  record.environment_mode = sweep.environment_mode;
  record.instance_count = trial.instance_count;
  record.process_count = trial.total_processes();
  record.distribution = spec::to_string(trial.distribution.type);
  record.spec_file = sweep.spec_file;
  record.submitted_by = sweep.submitted_by;
  record.submit_host = sweep.submit_host;
  record.amlrun_version = sweep.amlrun_version;
  return record;
}

std::string describe_values(const sweep::Assignment& values) {
  std::string out;
  for (const auto& [name, value] : values) {
    if (!out.empty()) out += ' ';
    out += name + "=" + value.str();
  }
  return out;
}

}  // namespace amlrun::compute
