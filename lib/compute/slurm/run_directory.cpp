#include "lib/compute/slurm/run_directory.hpp"

#include <fcntl.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "lib/store/run_layout.hpp"
#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/hash.hpp"
#include "lib/util/safe_dir.hpp"
#include "lib/util/strings.hpp"
#include "lib/util/time.hpp"

namespace amlrun::compute {

namespace {

constexpr int k_plan_format = 1;

nlohmann::ordered_json pairs_to_json(
    const std::vector<std::pair<std::string, std::string>>& pairs) {
  // A list of [name, value] keeps the order (and cannot collide on keys).
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const auto& [name, value] : pairs) out.push_back({name, value});
  return out;
}

std::vector<std::pair<std::string, std::string>> pairs_from_json(const nlohmann::json& json) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& item : json) {
    out.emplace_back(item.at(0).get<std::string>(), item.at(1).get<std::string>());
  }
  return out;
}

bool is_identifier(std::string_view name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  for (char c : name) {
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

std::string to_json_text(const SlurmLaunchPlan& plan) {
  nlohmann::ordered_json j;
  j["format_version"] = k_plan_format;
  j["run_id"] = plan.run_id;
  j["experiment"] = plan.experiment;
  j["workspace_root"] = plan.workspace_root.string();
  j["amlrun"] = plan.amlrun.string();
  j["inputs"] = pairs_to_json(plan.inputs);
  j["outputs"] = pairs_to_json(plan.outputs);
  j["timeout_seconds"] = plan.timeout_seconds ? nlohmann::ordered_json(*plan.timeout_seconds)
                                              : nlohmann::ordered_json();
  j["kill_grace_seconds"] = plan.kill_grace_seconds;
  j["gpus_per_node"] = plan.gpus_per_node;
  if (plan.container) {
    j["container"] = {{"runtime", plan.container->runtime}, {"image", plan.container->image}};
  } else {
    j["container"] = nullptr;
  }
  j["shared_dir"] = plan.shared_dir.string();
  j["venv"] = plan.venv;
  j["venv_python"] = plan.venv_python;
  j["venv_system_site_packages"] = plan.venv_system_site_packages;
  return j.dump(2) + "\n";
}

SlurmLaunchPlan slurm_launch_plan_from_json(const std::string& text) {
  try {
    auto j = nlohmann::json::parse(text);
    int format = j.at("format_version").get<int>();
    if (format > k_plan_format) {
      throw util::InfraError(
          fmt::format("{} has format {}, newer than this amlrun understands "
                      "({}); the nodes run an older amlrun than the submitter",
                      "launch.json", format, k_plan_format));
    }
    SlurmLaunchPlan plan;
    plan.run_id = j.at("run_id").get<std::string>();
    plan.experiment = j.at("experiment").get<std::string>();
    plan.workspace_root = j.at("workspace_root").get<std::string>();
    plan.amlrun = j.at("amlrun").get<std::string>();
    plan.inputs = pairs_from_json(j.at("inputs"));
    plan.outputs = pairs_from_json(j.at("outputs"));
    if (j.at("timeout_seconds").is_number_integer()) {
      plan.timeout_seconds = j["timeout_seconds"].get<std::int64_t>();
    }
    plan.kill_grace_seconds = j.at("kill_grace_seconds").get<int>();
    plan.gpus_per_node = j.at("gpus_per_node").get<int>();
    if (j.at("container").is_object()) {
      plan.container = ContainerLaunch{j["container"].at("runtime").get<std::string>(),
                                       j["container"].at("image").get<std::string>()};
    }
    plan.shared_dir = j.at("shared_dir").get<std::string>();
    plan.venv = j.value("venv", false);
    plan.venv_python = j.value("venv_python", "python3");
    plan.venv_system_site_packages = j.value("venv_system_site_packages", false);
    return plan;
  } catch (const nlohmann::json::exception& error) {
    throw util::InfraError(fmt::format("launch.json is not valid: {}", error.what()));
  }
}

std::string encode_environment_file(
    const std::vector<std::pair<std::string, std::string>>& variables) {
  std::string out;
  for (const auto& [name, value] : variables) {
    if (!is_identifier(name) || value.find('\0') != std::string::npos) {
      // The spec loader refuses both; reaching here is a bug, not input.
      throw util::InfraError(
          fmt::format("environment variable {} cannot be passed to Slurm", util::printable(name)));
    }
    out += name;
    out += '=';
    out += value;
    out += '\0';
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> decode_environment_file(const std::string& data,
                                                                         const std::string& name) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t start = 0;
  while (start < data.size()) {
    std::size_t end = data.find('\0', start);
    if (end == std::string::npos) {
      throw util::InfraError(
          fmt::format("{}: the last entry is not NUL-terminated (a truncated "
                      "file?)",
                      name));
    }
    std::string_view entry(data.data() + start, end - start);
    std::size_t equals = entry.find('=');
    if (equals == std::string_view::npos || !is_identifier(entry.substr(0, equals))) {
      throw util::InfraError(fmt::format("{}: malformed entry {}", name, util::printable(entry)));
    }
    out.emplace_back(std::string(entry.substr(0, equals)), std::string(entry.substr(equals + 1)));
    start = end + 1;
  }
  return out;
}

std::string to_string(DriverState state) {
  switch (state) {
    case DriverState::running:
      return "running";
    case DriverState::finalizing:
      return "finalizing";
    case DriverState::ended:
      return "ended";
    case DriverState::interrupted:
      return "interrupted";
  }
  return "running";
}

std::optional<DriverState> driver_state_from_string(const std::string& text) {
  for (auto state : {DriverState::running, DriverState::finalizing, DriverState::ended,
                     DriverState::interrupted}) {
    if (to_string(state) == text) return state;
  }
  return std::nullopt;
}

std::optional<SlurmJobStatus> read_slurm_status(const fs::path& run_dir) {
  store::SlurmRunLayout layout(run_dir);
  std::string name = layout.status().filename().string();
  std::string text;
  try {
    // The job could put a link where the status file goes: never follow it.
    auto dir = util::SafeDir::open(run_dir);
    util::UniqueFd fd = dir.try_open_file(name, O_RDONLY);
    if (!fd) return std::nullopt;  // not written yet (or the directory is gone)
    text = util::read_fd(fd.get(), layout.status());
  } catch (const util::PathInTheWay& error) {
    throw util::InfraError(
        fmt::format("{} is corrupt: {}", layout.status().string(), error.what()));
  } catch (const util::Error&) {
    return std::nullopt;  // the run directory went away between two looks
  }
  try {
    auto j = nlohmann::json::parse(text);
    SlurmJobStatus status;
    auto state = driver_state_from_string(j.at("state").get<std::string>());
    if (!state) throw util::InfraError("unknown state " + j.at("state").dump());
    status.state = *state;
    status.attempt = j.value("attempt", 1);
    status.job_id = j.value("job_id", "");
    status.nodes = j.value("nodes", std::vector<std::string>{});
    status.started = j.value("started", false);
    if (auto result = store::run_state_from_string(j.value("result", ""))) status.result = result;
    if (j.contains("exit_code") && j["exit_code"].is_number_integer()) {
      status.exit_code = j["exit_code"].get<int>();
    }
    status.failure_reason = j.value("failure_reason", "");
    status.started_at = j.value("started_at", "");
    status.ended_at = j.value("ended_at", "");
    if (j.contains("environment") && j["environment"].is_object()) {
      const auto& e = j["environment"];
      status.environment =
          store::PreparedEnvironment{e.value("cache_hit", false), e.value("seconds", 0.0),
                                     e.value("location", ""), e.value("python", "")};
    }
    status.warnings = j.value("warnings", std::vector<std::string>{});
    status.updated_at = j.value("updated_at", "");
    return status;
  } catch (const nlohmann::json::exception& e) {
    // Written atomically, so a parse error means someone else wrote it.
    throw util::InfraError(fmt::format("{} is corrupt: {}", layout.status().string(), e.what()));
  }
}

void write_slurm_status(const fs::path& run_dir, const SlurmJobStatus& status) {
  nlohmann::ordered_json j;
  j["state"] = to_string(status.state);
  j["attempt"] = status.attempt;
  j["job_id"] = status.job_id;
  j["nodes"] = status.nodes;
  j["started"] = status.started;
  j["result"] = status.result ? store::to_string(*status.result) : "";
  j["exit_code"] =
      status.exit_code ? nlohmann::ordered_json(*status.exit_code) : nlohmann::ordered_json();
  j["failure_reason"] = status.failure_reason;
  j["started_at"] = status.started_at;
  j["ended_at"] = status.ended_at;
  if (const auto& e = status.environment) {
    j["environment"] = {{"cache_hit", e->cache_hit},
                        {"seconds", e->seconds},
                        {"location", e->location},
                        {"python", e->python}};
  }
  if (!status.warnings.empty()) j["warnings"] = status.warnings;
  j["updated_at"] = util::utc_iso8601(util::Clock::now());
  store::SlurmRunLayout layout(run_dir);
  util::SafeDir::open(run_dir).write_file(layout.status().filename().string(), j.dump(2) + "\n",
                                          0644, /*durable=*/true);
}

int slurm_master_port(const std::string& job_id) {
  // The same spread as local runs ([20000, 60000)), from the job id alone.
  std::string digest = util::sha256_hex("slurm-job-" + job_id);
  return 20000 + static_cast<int>(std::stoul(digest.substr(0, 8), nullptr, 16) % 40000);
}

}  // namespace amlrun::compute
