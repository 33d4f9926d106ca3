// compute list, compute show: the compute targets of the workspace.
#include <unistd.h>

#include <fmt/format.h>
#include <cstdio>
#include <thread>

#include "cli/amlrun/commands.hpp"
#include "cli/amlrun/follow.hpp"
#include "cli/amlrun/option_checks.hpp"
#include "lib/compute/slurm/settings.hpp"
#include "lib/compute/slurm/target.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::cli {

namespace {

const std::map<std::string, OutputFormat> k_formats = {{"text", OutputFormat::text},
                                                       {"json", OutputFormat::json}};

nlohmann::ordered_json settings_json(const compute::SlurmSettings& settings) {
  nlohmann::ordered_json j;
  j["shared_dir"] = settings.shared_dir.string();
  j["partition"] = settings.partition;
  j["account"] = settings.account;
  j["qos"] = settings.qos;
  j["constraint"] = settings.constraint;
  j["gpus_per_node"] = settings.gpus_per_node ? nlohmann::ordered_json(*settings.gpus_per_node)
                                              : nlohmann::ordered_json();
  j["extra_sbatch_args"] = settings.extra_sbatch_args;
  if (settings.container) {
    j["container"] = {{"runtime", settings.container->runtime},
                      {"image", settings.container->image}};
  } else {
    j["container"] = nullptr;
  }
  if (settings.ssh) {
    const auto& ssh = *settings.ssh;
    j["ssh"] = {{"host", ssh.host},
                {"user", ssh.user},
                {"port", ssh.port ? nlohmann::ordered_json(*ssh.port) : nlohmann::ordered_json()},
                {"identity_file", ssh.identity_file},
                {"proxy_jump", ssh.proxy_jump},
                {"config_file", ssh.config_file},
                {"options", ssh.options}};
  } else {
    j["ssh"] = nullptr;
  }
  return j;
}

std::string slurm_summary(const compute::SlurmSettings& settings) {
  std::vector<std::string> parts;
  if (!settings.partition.empty()) parts.push_back("partition " + settings.partition);
  if (settings.gpus_per_node) {
    parts.push_back(fmt::format("{} GPUs per node", *settings.gpus_per_node));
  }
  if (settings.container) {
    parts.push_back(fmt::format("{} {}", settings.container->runtime, settings.container->image));
  }
  parts.push_back("shared_dir " + settings.shared_dir.string());
  return util::join(parts, ", ");
}

std::string local_summary() {
  return fmt::format("this machine ({} cores)", std::thread::hardware_concurrency());
}

ExitCode list_targets(const workspace::Workspace& workspace, OutputFormat output) {
  // Every target's settings are checked, so a broken one shows up here.
  std::vector<std::tuple<std::string, std::string, std::string>> rows = {
      {"local", "local", local_summary()}};
  nlohmann::ordered_json json = nlohmann::ordered_json::array();
  json.push_back({{"name", "local"}, {"type", "local"}});
  for (const auto& config : workspace.config().compute) {
    auto settings = compute::read_slurm_settings(config);
    rows.emplace_back(config.name, config.type, slurm_summary(settings));
    json.push_back(
        {{"name", config.name}, {"type", config.type}, {"settings", settings_json(settings)}});
  }
  if (output == OutputFormat::json) {
    std::printf("%s\n", json.dump(2).c_str());
    return ExitCode::ok;
  }
  std::size_t width = 4;
  for (const auto& row : rows) width = std::max(width, std::get<0>(row).size());
  std::printf("%-*s  %-6s %s\n", static_cast<int>(width), "NAME", "TYPE", "DETAILS");
  for (const auto& [name, type, details] : rows) {
    std::printf("%-*s  %-6s %s\n", static_cast<int>(width), name.c_str(), type.c_str(),
                details.c_str());
  }
  return ExitCode::ok;
}

ExitCode show_slurm(const compute::SlurmTarget& target, OutputFormat output) {
  const auto& settings = target.settings();
  auto report = target.report();
  if (output == OutputFormat::json) {
    nlohmann::ordered_json j;
    j["name"] = settings.name;
    j["type"] = "slurm";
    j["settings"] = settings_json(settings);
    j["reachable"] = report.reachable;
    j["error"] = report.error;
    j["shared_dir_problem"] = report.shared_dir_problem;
    j["partition_problem"] = report.partition_problem;
    nlohmann::ordered_json partitions = nlohmann::ordered_json::array();
    for (const auto& p : report.partitions) {
      partitions.push_back({{"name", p.name},
                            {"default", p.is_default},
                            {"availability", p.availability},
                            {"time_limit", p.time_limit},
                            {"nodes", p.total},
                            {"idle", p.idle},
                            {"allocated", p.allocated},
                            {"other", p.other},
                            {"node_list", p.nodes}});
    }
    j["partitions"] = partitions;
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    auto line = [](const char* key, const std::string& value) {
      if (!value.empty()) std::printf("%-18s %s\n", key, value.c_str());
    };
    line("name", settings.name);
    line("type", "slurm");
    if (settings.ssh) {
      const auto& ssh = *settings.ssh;
      line("ssh", fmt::format("{}{}{}{}", ssh.user.empty() ? "" : ssh.user + "@", ssh.host,
                              ssh.port ? fmt::format(":{}", *ssh.port) : "",
                              ssh.config_file.empty() ? "" : " (config " + ssh.config_file + ")"));
    }
    line("shared_dir", settings.shared_dir.string() +
                           (report.shared_dir_problem.empty() ? " (exists, writable)" : ""));
    line("partition", settings.partition.empty() ? "(Slurm's default)" : settings.partition);
    line("account", settings.account);
    line("qos", settings.qos);
    line("constraint", settings.constraint);
    if (settings.gpus_per_node) line("gpus_per_node", std::to_string(*settings.gpus_per_node));
    line("extra_sbatch_args", util::join(settings.extra_sbatch_args, " "));
    if (settings.container) {
      line("container",
           fmt::format("{} {}", settings.container->runtime, settings.container->image));
    }
    line("slurm", report.reachable ? "reachable" : "unreachable");
    if (report.reachable) {
      std::printf("\n%-12s %-6s %-11s %5s %5s %9s %5s  %s\n", "PARTITION", "AVAIL", "TIMELIMIT",
                  "NODES", "IDLE", "ALLOCATED", "OTHER", "NODELIST");
      for (const auto& p : report.partitions) {
        std::printf("%-12s %-6s %-11s %5d %5d %9d %5d  %s\n",
                    (p.name + (p.is_default ? "*" : "")).c_str(), p.availability.c_str(),
                    p.time_limit.c_str(), p.total, p.idle, p.allocated, p.other, p.nodes.c_str());
      }
    }
  }
  if (!report.shared_dir_problem.empty()) {
    std::fprintf(stderr, "amlrun: error: %s\n", report.shared_dir_problem.c_str());
  }
  if (!report.reachable) std::fprintf(stderr, "amlrun: error: %s\n", report.error.c_str());
  if (!report.partition_problem.empty()) {
    std::fprintf(stderr, "amlrun: error: %s\n", report.partition_problem.c_str());
  }
  bool usable =
      report.reachable && report.shared_dir_problem.empty() && report.partition_problem.empty();
  return usable ? ExitCode::ok : ExitCode::infrastructure;
}

}  // namespace

void add_compute(CLI::App& app, GlobalOptions& global, Handler& handler) {
  app.require_subcommand(1);
  auto output = std::make_shared<OutputFormat>(OutputFormat::text);
  auto name = std::make_shared<std::string>();
  auto* list = app.add_subcommand("list", "List the compute targets of the workspace");
  add_choice_option(*list, "--output", *output, k_formats, "text or json");
  auto* show = app.add_subcommand(
      "show", "Show a target's settings, whether Slurm answers, its partitions and idle nodes");
  show->add_option("NAME", *name, "The target's name")->required();
  add_choice_option(*show, "--output", *output, k_formats, "text or json");
  handler = [list, output, name, &global]() {
    auto workspace = workspace::open_workspace(workspace_options(global, false));
    if (list->parsed()) return list_targets(workspace, *output);
    auto target = compute::make_target(workspace, *name);
    if (const auto* slurm = dynamic_cast<const compute::SlurmTarget*>(target.get())) {
      return show_slurm(*slurm, *output);
    }
    if (*output == OutputFormat::json) {
      std::printf("%s\n", nlohmann::ordered_json({{"name", "local"},
                                                  {"type", "local"},
                                                  {"cores", std::thread::hardware_concurrency()}})
                              .dump(2)
                              .c_str());
    } else {
      std::printf("%-18s %s\n%-18s %s\n%-18s %s\n", "name", "local", "type", "local", "runs on",
                  local_summary().c_str());
    }
    return ExitCode::ok;
  };
}

}  // namespace amlrun::cli
