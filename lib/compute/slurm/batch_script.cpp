#include "lib/compute/slurm/batch_script.hpp"

#include <fmt/format.h>

#include "lib/store/run_layout.hpp"
#include "lib/util/shell.hpp"

namespace amlrun::compute {

std::vector<std::string> sbatch_command(const SbatchRequest& request,
                                        const SlurmSettings& settings) {
  std::vector<std::string> argv = {
      "sbatch",
      "--parsable",
      "--job-name=" + slurm_job_name(request.job_name),
      "--comment=" + request.comment,
      fmt::format("--nodes={}", request.nodes),
      fmt::format("--ntasks-per-node={}", request.tasks_per_node),
      // shared_dir never holds '%' (checked), so these are plain paths but
      // for Slurm's %j (the job id).
      "--output=" + store::SlurmRunLayout(request.run_dir).batch_output_pattern().string(),
      // A requeued job's attempts share the batch output: append, so the
      // first attempt's log is kept (Slurm truncates it by default).
      "--open-mode=append",
      "--chdir=" + request.run_dir.string(),
  };
  if (request.timeout_seconds) {
    argv.push_back(fmt::format("--time={}", slurm_time_limit_minutes(*request.timeout_seconds,
                                                                     request.kill_grace_seconds)));
  }
  if (!settings.partition.empty()) argv.push_back("--partition=" + settings.partition);
  if (!settings.account.empty()) argv.push_back("--account=" + settings.account);
  if (!settings.qos.empty()) argv.push_back("--qos=" + settings.qos);
  if (!settings.constraint.empty()) argv.push_back("--constraint=" + settings.constraint);
  if (request.gpus_per_node > 0) {
    argv.push_back(fmt::format("--gpus-per-node={}", request.gpus_per_node));
  }
  argv.insert(argv.end(), settings.extra_sbatch_args.begin(), settings.extra_sbatch_args.end());
  argv.push_back(request.script.string());
  return argv;
}

std::string batch_script(const std::filesystem::path& amlrun,
                         const std::filesystem::path& run_dir) {
  return "#!/bin/sh\n"
         "# Written by amlrun. Scheduler options were given to sbatch as arguments, the\n"
         "# job's environment variables are in job.env (read by amlrun, never by a\n"
         "# shell), and every word below is quoted: nothing a job file says can change\n"
         "# what this script does.\n"
         "exec " +
         util::shell_join({amlrun.string(), "_slurm-run", "--run-dir", run_dir.string()}) + "\n";
}

std::string slurm_job_name(const std::string& wanted) {
  std::string name;
  for (char c : wanted) {
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '-';
    if (!plain) c = '_';
    if (c == '_' && !name.empty() && name.back() == '_') continue;
    name.push_back(c);
    if (name.size() == 64) break;
  }
  while (!name.empty() && name.back() == '_') name.pop_back();
  while (!name.empty() && name.front() == '_') name.erase(0, 1);
  return name.empty() ? "amlrun" : name;
}

std::int64_t slurm_time_limit_minutes(std::int64_t timeout_seconds, int kill_grace_seconds) {
  std::int64_t seconds = timeout_seconds + kill_grace_seconds + 60;
  return (seconds + 59) / 60;
}

std::string slurm_submission_comment(const std::string& run_id, const std::string& token) {
  return fmt::format("amlrun:{}:{}", run_id, token);
}

}  // namespace amlrun::compute
