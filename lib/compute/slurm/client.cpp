#include "lib/compute/slurm/client.hpp"

#include <fmt/format.h>

#include "lib/util/error.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::compute {

namespace {

// squeue's fields, '|'-separated; the comment comes last so that it may hold
// anything (the others never contain '|').
constexpr const char* k_squeue_format =
    "--Format=JobID:|,State:|,Reason:|,RestartCnt:|,exit_code:|,NodeList:|,Comment:";

std::optional<int> to_int(std::string_view text) {
  text = util::trim(text);
  if (text.empty()) return std::nullopt;
  int value = 0;
  for (char c : text) {
    if (c < '0' || c > '9' || value > 100000000) return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

std::string first_line(const std::string& text) {
  std::string_view trimmed = util::trim(text);
  return std::string(trimmed.substr(0, trimmed.find('\n')));
}

bool mentions(const std::string& text, std::string_view word) {
  return text.find(word) != std::string::npos;
}

}  // namespace

std::string explain_slurm_failure(const std::string& command, const std::string& stderr_text) {
  std::string line = first_line(stderr_text);
  // The munge plugin's first line is advice for administrators; the line
  // that says what failed comes later.
  for (const auto& candidate : util::split(stderr_text, '\n')) {
    if (mentions(candidate, "Munge encode failed")) {
      line = std::string(util::trim(candidate));
      break;
    }
  }
  // The munge plugin's words when munged does not answer: "Munge encode
  // failed: Failed to access \"/run/munge/munge.socket.2\"", "If munged is
  // up, restart with --num-threads=10".
  if (mentions(stderr_text, "munge") || mentions(stderr_text, "Munge") ||
      mentions(stderr_text, "auth_g_create") || mentions(stderr_text, "Authentication")) {
    return fmt::format(
        "{} failed: Slurm's authentication service (munge) is not answering on this machine "
        "({}); start munged (e.g. systemctl start munge) or ask the cluster's administrators",
        command, line.empty() ? "no message" : line);
  }
  if (mentions(stderr_text, "Unable to contact slurm controller") ||
      mentions(stderr_text, "Socket timed out") || mentions(stderr_text, "Connection refused")) {
    return fmt::format(
        "{} failed: slurmctld, the cluster's controller, is not answering ({}); check that it "
        "runs and that SLURM_CONF or /etc/slurm/slurm.conf names it",
        command, line);
  }
  return fmt::format("{} failed: {}", command, line.empty() ? "no message" : line);
}

CommandRunner system_command_runner(std::chrono::milliseconds timeout) {
  return [timeout](const std::vector<std::string>& argv) {
    util::SpawnOptions options;
    options.argv = argv;
    return util::run_capture(options, {}, timeout);
  };
}

bool is_finished_slurm_state(const std::string& state) {
  for (const char* finished :
       {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "PREEMPTED", "NODE_FAIL", "OUT_OF_MEMORY",
        "BOOT_FAIL", "DEADLINE", "SPECIAL_EXIT", "REVOKED"}) {
    if (state == finished) return true;
  }
  return false;
}

std::vector<SlurmJobInfo> parse_squeue_jobs(const std::string& output) {
  std::vector<SlurmJobInfo> jobs;
  for (const auto& line : util::split(output, '\n')) {
    if (util::trim(line).empty()) continue;
    std::vector<std::string> fields;
    std::size_t start = 0;
    for (int i = 0; i < 6; ++i) {
      std::size_t bar = line.find('|', start);
      if (bar == std::string::npos) break;
      fields.push_back(line.substr(start, bar - start));
      start = bar + 1;
    }
    if (fields.size() < 6) continue;  // not a line of ours (a warning, say)
    SlurmJobInfo job;
    job.job_id = std::string(util::trim(fields[0]));
    job.state = std::string(util::trim(fields[1]));
    job.reason = std::string(util::trim(fields[2]));
    job.restarts = to_int(fields[3]).value_or(0);
    job.exit_status = to_int(fields[4]);
    job.nodes = std::string(util::trim(fields[5]));
    std::string comment = line.substr(start);
    while (!comment.empty() && comment.back() == ' ') comment.pop_back();  // column padding
    job.comment = comment == "(null)" ? "" : comment;
    jobs.push_back(std::move(job));
  }
  return jobs;
}

std::vector<SlurmPartition> parse_sinfo_partitions(const std::string& output) {
  std::vector<SlurmPartition> partitions;
  for (const auto& line : util::split(output, '\n')) {
    auto fields = util::split(line, '|');
    if (fields.size() < 5) continue;
    SlurmPartition partition;
    partition.name = fields[0];
    if (!partition.name.empty() && partition.name.back() == '*') {
      partition.is_default = true;
      partition.name.pop_back();
    }
    partition.availability = fields[1];
    partition.time_limit = fields[2];
    auto counts = util::split(fields[3], '/');  // allocated/idle/other/total
    if (counts.size() == 4) {
      partition.allocated = to_int(counts[0]).value_or(0);
      partition.idle = to_int(counts[1]).value_or(0);
      partition.other = to_int(counts[2]).value_or(0);
      partition.total = to_int(counts[3]).value_or(0);
    }
    partition.nodes = fields[4];
    partitions.push_back(std::move(partition));
  }
  return partitions;
}

std::string parse_sbatch_job_id(const std::string& output) {
  std::string line = first_line(output);
  std::string id = line.substr(0, line.find(';'));
  if (id.empty() || !to_int(id)) return "";
  return id;
}

util::CaptureResult SlurmClient::run(const std::vector<std::string>& argv) const {
  try {
    auto result = m_run(argv);
    if (result.timed_out) {
      throw SlurmNoAnswer(
          fmt::format("{} did not answer in time; is slurmctld reachable from "
                      "here?",
                      argv[0]));
    }
    return result;
  } catch (const util::SpawnError& error) {
    throw util::InfraError(
        fmt::format("{}; the slurm target needs Slurm's client commands on this "
                    "machine (Debian: apt-get install slurm-client) and a "
                    "slurm.conf (or SLURM_CONF) naming the cluster",
                    error.what()));
  }
}

std::string SlurmClient::submit(const std::vector<std::string>& sbatch_argv) const {
  auto result = run(sbatch_argv);
  std::string id = parse_sbatch_job_id(result.out);
  if (result.exit_code != 0 && mentions(result.err, "Socket timed out")) {
    // sbatch sent the job but heard nothing back: slurmctld may have
    // queued it. The token finds it later; submitting again could run it twice.
    throw SlurmNoAnswer(
        fmt::format("sbatch did not hear back from slurmctld ({})", first_line(result.err)));
  }
  if (result.exit_code != 0 && (mentions(result.err, "munge") || mentions(result.err, "Munge"))) {
    throw util::InfraError(explain_slurm_failure("sbatch", result.err));
  }
  if (result.exit_code != 0 || id.empty()) {
    std::string message(util::trim(result.err.empty() ? result.out : result.err));
    throw util::InfraError(fmt::format("sbatch refused the job (exit code {}): {}",
                                       result.exit_code, message.empty() ? "no message" : message));
  }
  return id;
}

std::optional<SlurmJobInfo> SlurmClient::job(const std::string& job_id) const {
  auto result = run({"squeue", "--noheader", "--states=all", "--jobs=" + job_id, k_squeue_format});
  if (result.exit_code != 0) {
    if (result.err.find("Invalid job id") != std::string::npos) return std::nullopt;
    throw util::InfraError(explain_slurm_failure("squeue", result.err));
  }
  for (auto& job : parse_squeue_jobs(result.out)) {
    if (job.job_id == job_id) return job;
  }
  return std::nullopt;
}

std::vector<SlurmJobInfo> SlurmClient::jobs(const std::vector<std::string>& job_ids) const {
  if (job_ids.empty()) return {};
  auto result = run({"squeue", "--noheader", "--states=all", "--jobs=" + util::join(job_ids, ","),
                     k_squeue_format});
  // squeue refuses the whole list when one id is unknown to it.
  if (result.exit_code != 0 && result.err.find("Invalid job id") != std::string::npos) {
    std::vector<SlurmJobInfo> found;
    for (const auto& id : job_ids) {
      if (auto job = this->job(id)) found.push_back(std::move(*job));
    }
    return found;
  }
  if (result.exit_code != 0) throw util::InfraError(explain_slurm_failure("squeue", result.err));
  return parse_squeue_jobs(result.out);
}

std::vector<SlurmJobInfo> SlurmClient::jobs_with_comment(const std::string& comment) const {
  auto result = run({"squeue", "--noheader", "--states=all", "--me", k_squeue_format});
  if (result.exit_code != 0) {
    throw util::InfraError(explain_slurm_failure("squeue", result.err));
  }
  std::vector<SlurmJobInfo> found;
  for (auto& job : parse_squeue_jobs(result.out)) {
    if (job.comment == comment) found.push_back(std::move(job));
  }
  return found;
}

void SlurmClient::cancel(const std::string& job_id) const {
  auto result = run({"scancel", job_id});
  bool gone = result.err.find("already completing or completed") != std::string::npos ||
              result.err.find("Invalid job id") != std::string::npos;
  if (result.exit_code != 0 && !gone) {
    throw util::InfraError(fmt::format("scancel {} failed: {}", job_id, first_line(result.err)));
  }
}

std::vector<SlurmPartition> SlurmClient::partitions() const {
  auto result = run({"sinfo", "--noheader", "--format=%P|%a|%l|%F|%N"});
  if (result.exit_code != 0) {
    throw util::InfraError(explain_slurm_failure("sinfo", result.err));
  }
  return parse_sinfo_partitions(result.out);
}

}  // namespace amlrun::compute
