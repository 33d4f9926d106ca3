#include "lib/compute/slurm/settings.hpp"

#include <fmt/format.h>

#include "lib/spec/reader.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::compute {

namespace {

// sbatch options amlrun sets itself, or that have their own key. getopt_long
// also accepts unambiguous abbreviations (--part=x), so a prefix of one of
// these names counts as the option.
struct ReservedOption {
  const char* long_name;
  char short_name;  // 0 when none
  const char* why;
};

const ReservedOption k_reserved[] = {
    {"partition", 'p', "use the target's 'partition' key"},
    {"account", 'A', "use the target's 'account' key"},
    {"qos", 'q', "use the target's 'qos' key"},
    {"constraint", 'C', "use the target's 'constraint' key"},
    {"gpus-per-node", 0, "use the target's 'gpus_per_node' key"},
    {"job-name", 'J', "amlrun names the job after the run (display_name or experiment)"},
    {"comment", 0, "amlrun keeps its submission token there"},
    {"output", 'o', "amlrun writes the batch output into the run directory"},
    {"error", 'e', "amlrun writes the batch output into the run directory"},
    {"input", 'i', "a run has no standard input"},
    {"nodes", 'N', "it comes from the job's instance_count"},
    {"ntasks", 'n', "it comes from the job's instance_count and process_count_per_instance"},
    {"ntasks-per-node", 0, "it comes from the job's process_count_per_instance"},
    {"time", 't', "it comes from the job's limits.timeout"},
    {"chdir", 'D', "the job runs in its run directory under shared_dir"},
    {"parsable", 0, "amlrun reads sbatch's answer itself"},
    {"wrap", 0, "amlrun writes the batch script"},
    {"array", 'a', "one run is one Slurm job"},
    {"wait", 'W', "amlrun follows the job itself"},
    {"test-only", 0, "the job would never run"},
    {"clusters", 'M', "amlrun talks to the default cluster of this machine's Slurm"},
};

bool has_space_or_control(std::string_view text) {
  for (unsigned char c : text) {
    if (c <= ' ' || c == 0x7f) return true;
  }
  return false;
}

bool has_control(std::string_view text) {
  for (unsigned char c : text) {
    if (c < ' ' || c == 0x7f) return true;
  }
  return false;
}

// A short message when an extra sbatch argument is not allowed, else "".
std::string check_extra_argument(const std::string& argument) {
  if (argument.empty() || argument[0] != '-' || argument == "-" || argument == "--") {
    return fmt::format(
        "{} is not an option; give each option with its value in one entry, e.g. "
        "--mem=64G",
        util::printable(argument));
  }
  if (argument.find('\n') != std::string::npos || argument.find('\r') != std::string::npos) {
    return fmt::format("{} contains a line break", util::printable(argument));
  }
  if (argument[1] == '-') {
    std::string name = argument.substr(
        2, argument.find('=') == std::string::npos ? std::string::npos : argument.find('=') - 2);
    for (const auto& option : k_reserved) {
      std::string_view reserved = option.long_name;
      if (name.size() >= 2 && reserved.substr(0, name.size()) == name) {
        return fmt::format("'{}' cannot be given here ('--{}': {})", argument, reserved,
                           option.why);
      }
    }
    return "";
  }
  for (const auto& option : k_reserved) {
    if (option.short_name && argument[1] == option.short_name) {
      return fmt::format("'{}' cannot be given here ('-{}' is '--{}': {})", argument,
                         option.short_name, option.long_name, option.why);
    }
  }
  return "";
}

}  // namespace

SlurmSettings read_slurm_settings(const workspace::ComputeTargetConfig& config) {
  SlurmSettings settings;
  settings.name = config.name;
  spec::Diagnostics diagnostics;
  std::string path = spec::join_key_path("compute", config.name);
  spec::MapReader target(config.settings, path, diagnostics);
  target.accept({"type"});

  auto word = [&](spec::MapReader& reader, std::string_view key) -> std::string {
    auto value = reader.string(key);
    if (!value) return "";
    if (value->empty() || has_space_or_control(*value)) {
      diagnostics.error(reader.node(key)->mark, reader.key_path(key),
                        fmt::format("{} must be one word without spaces or control characters",
                                    util::printable(*value)));
      return "";
    }
    return *value;
  };
  settings.partition = word(target, "partition");
  settings.account = word(target, "account");
  settings.qos = word(target, "qos");
  settings.constraint = word(target, "constraint");
  if (auto gpus = target.integer("gpus_per_node", 0, 1024)) {
    settings.gpus_per_node = static_cast<int>(*gpus);
  }
  auto extra_node = target.node("extra_sbatch_args");
  settings.extra_sbatch_args = target.string_list("extra_sbatch_args");
  for (std::size_t i = 0; i < settings.extra_sbatch_args.size(); ++i) {
    std::string problem = check_extra_argument(settings.extra_sbatch_args[i]);
    if (!problem.empty() && extra_node && i < extra_node->items.size()) {
      diagnostics.error(extra_node->items[i]->mark,
                        fmt::format("{}[{}]", target.key_path("extra_sbatch_args"), i), problem);
    }
  }

  spec::MapReader container(target.node("container"), target.key_path("container"), diagnostics);
  auto runtime = container.choice("runtime", {"pyxis", "apptainer"});
  auto image = container.string("image");
  if (container.present()) {
    if (!container.has("runtime")) {
      diagnostics.error(container.mark(), container.path(),
                        "missing 'runtime' (pyxis or apptainer)");
    }
    if (!container.has("image")) {
      diagnostics.error(container.mark(), container.path(),
                        "missing 'image' (e.g. docker://pytorch/pytorch:latest)");
    } else if (image && (image->empty() || has_space_or_control(*image))) {
      diagnostics.error(container.node("image")->mark, container.key_path("image"),
                        fmt::format("{} must be an image name without spaces or control "
                                    "characters",
                                    util::printable(*image)));
    } else if (runtime && image) {
      settings.container = ContainerLaunch{*runtime, *image};
    }
  }
  container.finish();

  settings.ssh = read_ssh_settings(target, diagnostics);

  auto shared = target.string("shared_dir");
  if (!shared && target.present()) {
    diagnostics.error(target.mark(), path,
                      "missing 'shared_dir': a directory on a filesystem every node of the "
                      "cluster mounts at the same path (run directories live there)");
  } else if (shared) {
    auto mark = target.node("shared_dir")->mark;
    std::string key = target.key_path("shared_dir");
    std::filesystem::path dir(*shared);
    if (!dir.is_absolute()) {
      diagnostics.error(mark, key,
                        fmt::format("{} is not an absolute path; nodes see neither this "
                                    "directory nor its relative paths",
                                    util::printable(*shared)));
    } else if (has_control(*shared)) {
      diagnostics.error(mark, key,
                        fmt::format("{} contains control characters", util::printable(*shared)));
    } else if (shared->find('%') != std::string::npos) {
      diagnostics.error(mark, key,
                        "contains '%', which Slurm reads as a file name pattern (%j, %u, ...); "
                        "choose a directory without it");
    } else if (settings.container && shared->find_first_of(",:") != std::string::npos) {
      diagnostics.error(mark, key,
                        "contains ',' or ':', which separate the container runtime's bind "
                        "mounts; choose a directory without them");
    } else {
      settings.shared_dir = dir.lexically_normal();
      if (settings.shared_dir.filename().empty()) {
        settings.shared_dir = settings.shared_dir.parent_path();
      }
    }
  }
  target.finish();
  if (diagnostics.has_errors()) {
    std::string file = config.settings && config.settings->mark.source
                           ? config.settings->mark.source->name
                           : std::string("config.yml");
    throw spec::SpecError(file, diagnostics.errors_in_file_order());
  }
  return settings;
}

}  // namespace amlrun::compute
