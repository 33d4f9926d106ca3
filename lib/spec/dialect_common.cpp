// What the dialects share: paths, Azure references, common metadata keys,
// compute, resources, distribution and limits.
#include <sys/stat.h>

#include <fmt/format.h>
#include <cctype>
#include <cerrno>
#include <cstring>

#include "lib/spec/dialects.hpp"
#include "lib/util/names.hpp"
#include "lib/util/strings.hpp"
#include "lib/util/tags.hpp"

namespace amlrun::spec::detail {

namespace fs = std::filesystem;

static bool starts_with(const std::string& text, std::string_view prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

bool refuse_remote_reference(const Node& node, const std::string& key_path,
                             const std::string& local_hint, LoadContext& context) {
  const std::string& text = node.value;
  const std::string shown = util::printable(text);
  if (starts_with(text, "azureml://datastores/") || starts_with(text, "azureml://subscriptions/")) {
    context.diagnostics.error(node.mark, key_path,
                              fmt::format("{} is an Azure ML datastore URI, which amlrun cannot "
                                          "read; {}",
                                          shown, local_hint));
    return true;
  }
  if (starts_with(text, "azureml://jobs/")) {
    context.diagnostics.error(
        node.mark, key_path,
        fmt::format("{} is an Azure ML job output; {} (outputs of amlrun runs: amlrun download)",
                    shown, local_hint));
    return true;
  }
  if (starts_with(text, "azureml:")) {
    context.diagnostics.error(node.mark, key_path,
                              fmt::format("{} refers to an Azure ML asset, which exists only in an "
                                          "Azure ML workspace; {}",
                                          shown, local_hint));
    return true;
  }
  static const std::vector<std::pair<std::string, std::string>> cloud = {
      {"wasbs://", "Azure Blob Storage"}, {"wasb://", "Azure Blob Storage"},
      {"abfss://", "Azure Data Lake"},    {"abfs://", "Azure Data Lake"},
      {"adl://", "Azure Data Lake"},      {"s3://", "Amazon S3"},
      {"gs://", "Google Cloud Storage"},  {"hdfs://", "HDFS"},
      {"runs:/", "an MLflow run"},        {"models:/", "an MLflow model registry"},
  };
  for (const auto& [scheme, service] : cloud) {
    if (starts_with(text, scheme)) {
      context.diagnostics.error(
          node.mark, key_path,
          fmt::format("{} is {}, which amlrun cannot read; {} (for a public blob, its https:// "
                      "address)",
                      shown, service, local_hint));
      return true;
    }
  }
  return false;
}

std::optional<fs::path> resolve_local_path(const Node& node, const std::string& key_path,
                                           PathKind kind, const std::string& what,
                                           LoadContext& context, const std::string& hint) {
  if (!node.is_scalar()) {
    context.diagnostics.error(node.mark, key_path, "expected a path, got " + node.describe());
    return std::nullopt;
  }
  std::string text = node.value;
  if (text.empty()) {
    context.diagnostics.error(node.mark, key_path, "the path is empty");
    return std::nullopt;
  }
  if (refuse_remote_reference(node, key_path, hint.empty() ? k_local_data_hint : hint, context)) {
    return std::nullopt;
  }
  if (starts_with(text, "file://")) {
    std::string rest = text.substr(7);
    if (starts_with(rest, "localhost/")) rest = rest.substr(9);
    if (rest.empty() || rest[0] != '/') {
      context.diagnostics.error(node.mark, key_path,
                                fmt::format("{} names a remote host; a file:// URI must be "
                                            "file:///absolute/path",
                                            util::printable(text)));
      return std::nullopt;
    }
    text = rest;
  } else if (auto scheme = text.find("://"); scheme != std::string::npos) {
    context.diagnostics.error(node.mark, key_path,
                              fmt::format("unsupported URI scheme '{}' in {}; give a local path, "
                                          "a file:// URI or an http(s) URL",
                                          text.substr(0, scheme), util::printable(text)));
    return std::nullopt;
  }
  fs::path path = fs::path(text).is_absolute() ? fs::path(text) : context.base_dir / text;
  path = path.lexically_normal();
  if (path.has_filename() == false && path.string().size() > 1) {
    path = path.parent_path();  // "src/" → "src"
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    // Only a missing path is "does not exist": a link loop or a directory
    // that may not be searched needs another fix.
    int error = errno;
    std::string shown = util::printable(node.value);
    std::string message;
    if (error == ENOENT || error == ENOTDIR) {
      message = fmt::format("the {} {} does not exist (looked for {})", what, shown, path.string());
    } else if (error == ELOOP) {
      message = fmt::format(
          "the {} {} is a symbolic link loop ({}): following its links never reaches a file or "
          "directory; point the link at the real {}",
          what, shown, path.string(),
          kind == PathKind::directory ? "directory"
          : kind == PathKind::file    ? "file"
                                      : "file or directory");
    } else {
      message = fmt::format("the {} {} cannot be reached ({}): {}", what, shown, path.string(),
                            std::strerror(error));
    }
    context.diagnostics.error(node.mark, key_path, message);
    return std::nullopt;
  }
  if (kind == PathKind::directory && !S_ISDIR(st.st_mode)) {
    context.diagnostics.error(node.mark, key_path,
                              fmt::format("the {} {} is not a directory ({})", what,
                                          util::printable(node.value), path.string()));
    return std::nullopt;
  }
  if (kind == PathKind::file && !S_ISREG(st.st_mode)) {
    context.diagnostics.error(node.mark, key_path,
                              fmt::format("the {} {} is not a regular file ({})", what,
                                          util::printable(node.value), path.string()));
    return std::nullopt;
  }
  return path;
}

static bool is_environment_name(const std::string& name) {
  if (name.empty()) return false;
  if (!(std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_')) return false;
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  }
  return true;
}

void read_job_name(MapReader& root, LoadContext& context, JobSpec& spec) {
  if (auto name = root.string("name")) {
    if (!util::is_valid_name(*name)) {
      context.diagnostics.error(root.node("name")->mark, "name",
                                fmt::format("invalid job name {}: use 1-128 characters from "
                                            "[A-Za-z0-9._-], starting with a letter or digit",
                                            util::printable(*name)));
    } else if (spec.display_name.empty()) {
      spec.display_name = *name;
    }
  }
}

void read_common(MapReader& root, LoadContext& context, JobSpec& spec) {
  root.accept({"$schema"});
  if (auto name = root.string("experiment_name")) {
    if (!util::is_valid_name(*name)) {
      context.diagnostics.error(root.node("experiment_name")->mark, "experiment_name",
                                fmt::format("invalid experiment name {}: use 1-128 characters "
                                            "from [A-Za-z0-9._-], starting with a letter or digit",
                                            util::printable(*name)));
    } else {
      spec.experiment_name = *name;
    }
  }
  if (auto display = root.string("display_name")) spec.display_name = *display;
  if (auto description = root.string("description")) spec.description = *description;
  // Tags follow the one rule of util/tags.hpp, as on the command line, so a
  // job's tags can be filtered on and changed with amlrun runs tag.
  auto tags = root.string_map("tags");
  auto tags_node = root.node("tags");
  for (const auto& [key, value] : tags) {
    std::string path = join_key_path("tags", key);
    Mark key_mark = tags_node->mark;
    Mark value_mark = tags_node->mark;
    for (const auto& [k, v] : tags_node->entries) {
      if (k->value == key) {
        key_mark = k->mark;
        value_mark = v->mark;
      }
    }
    if (auto problem = util::tag_key_problem(key)) {
      context.diagnostics.error(key_mark, path, *problem);
    } else if (auto value_problem = util::tag_value_problem(key, value)) {
      context.diagnostics.error(value_mark, path, *value_problem);
    } else {
      spec.tags.emplace_back(key, value);
    }
  }
  auto variables = root.string_map("environment_variables");
  auto variables_node = root.node("environment_variables");
  for (const auto& [name, value] : variables) {
    std::string path = join_key_path("environment_variables", name);
    Mark mark = variables_node->mark;
    for (const auto& [k, v] : variables_node->entries) {
      if (k->value == name) mark = k->mark;
    }
    if (!is_environment_name(name)) {
      context.diagnostics.error(mark, path,
                                fmt::format("{} is not a valid variable name (letters, digits "
                                            "and '_', not starting with a digit)",
                                            util::printable(name)));
      continue;
    }
    if (starts_with(name, "AMLRUN_")) {
      context.diagnostics.error(mark, path,
                                "variables starting with AMLRUN_ are set by amlrun for every run; "
                                "choose another name");
      continue;
    }
    spec.environment_variables.emplace_back(name, value);
  }
}

void read_compute(MapReader& root, const std::string& key, LoadContext& context, JobSpec& spec) {
  auto node = root.node(key);
  auto name = root.string(key);
  if (!name) return;
  if (starts_with(*name, "azureml:")) {
    context.diagnostics.error(
        node->mark, key,
        fmt::format("{} is an Azure ML compute; name a target from .amlrun/config.yml (amlrun "
                    "compute list), or remove {} to run on this machine (--compute local does "
                    "the same for one submit)",
                    util::printable(*name), key));
    return;
  }
  if (!util::is_valid_name(*name)) {
    context.diagnostics.error(node->mark, key,
                              fmt::format("invalid compute target name {}: use 1-128 characters "
                                          "from [A-Za-z0-9._-], starting with a letter or digit",
                                          util::printable(*name)));
    return;
  }
  spec.compute = *name;
}

static bool is_shm_size(const std::string& text) {
  // Docker's format: a number with an optional unit b, k, m or g.
  if (text.empty()) return false;
  std::size_t i = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
  if (i == 0) return false;
  if (i == text.size()) return true;
  std::string unit = text.substr(i);
  for (auto& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return unit == "b" || unit == "k" || unit == "m" || unit == "g" || unit == "kb" || unit == "mb" ||
         unit == "gb";
}

// Azure ML's tensorflow distribution names its processes by role:
// worker_count workers (default: resources.instance_count, one per instance)
// and parameter_server_count parameter servers (default 0). They are the
// run's processes, spread evenly over the instances, so their sum must be a
// multiple of instance_count; process_count_per_instance, where written too,
// must agree with it (without worker_count it decides the process count).
static void read_tensorflow_layout(MapReader& distribution, bool per_instance_written,
                                   LoadContext& context, JobSpec& spec) {
  auto workers_written = distribution.integer("worker_count", 1, 4096);
  auto servers_written = distribution.integer("parameter_server_count", 0, 4096);
  const int instances = spec.instance_count;
  const int servers = static_cast<int>(servers_written.value_or(0));
  int total = 0;
  int workers = 0;
  if (per_instance_written) {
    total = instances * spec.distribution.process_count_per_instance;
    workers = workers_written ? static_cast<int>(*workers_written) : total - servers;
  } else {
    workers = workers_written ? static_cast<int>(*workers_written) : instances;
    total = workers + servers;
  }
  Mark mark = distribution.has("worker_count") ? distribution.key_mark("worker_count")
              : distribution.has("parameter_server_count")
                  ? distribution.key_mark("parameter_server_count")
                  : distribution.mark();
  if (workers < 1) {
    context.diagnostics.error(
        distribution.key_mark("parameter_server_count"), "distribution.parameter_server_count",
        fmt::format("{} parameter servers leave no worker among the {} processes "
                    "(resources.instance_count x distribution.process_count_per_instance); "
                    "give fewer parameter servers or more processes",
                    servers, total));
    return;
  }
  if (workers + servers != total) {
    context.diagnostics.error(
        mark, "distribution.worker_count",
        fmt::format("{} workers + {} parameter servers make {} processes, but "
                    "resources.instance_count x distribution.process_count_per_instance is {}; "
                    "make them agree, or remove process_count_per_instance",
                    workers, servers, workers + servers, total));
    return;
  }
  if (total % instances != 0) {
    context.diagnostics.error(
        mark, workers_written ? "distribution.worker_count" : "distribution.parameter_server_count",
        fmt::format("{} workers + {} parameter servers make {} processes, which cannot be "
                    "spread evenly over {} instances (resources.instance_count); make the sum a "
                    "multiple of {}",
                    workers, servers, total, instances, instances));
    return;
  }
  if (total / instances > 1024) {
    context.diagnostics.error(mark, "distribution.worker_count",
                              fmt::format("{} processes on each of {} instances is more than "
                                          "1024 per instance",
                                          total / instances, instances));
    return;
  }
  spec.distribution.worker_count = workers;
  spec.distribution.parameter_server_count = servers;
  spec.distribution.process_count_per_instance = total / instances;
}

void read_resources_distribution_limits(MapReader& root, LoadContext& context, JobSpec& spec) {
  MapReader resources(root.node("resources"), "resources", context.diagnostics);
  if (auto count = resources.integer("instance_count", 1, 1000)) {
    spec.instance_count = static_cast<int>(*count);
  }
  if (auto shm = resources.string("shm_size")) {
    if (!is_shm_size(*shm)) {
      context.diagnostics.error(
          resources.node("shm_size")->mark, "resources.shm_size",
          fmt::format("{} is not a size such as 2g, 512m or 1073741824", util::printable(*shm)));
    } else {
      spec.shm_size = *shm;
    }
  }
  if (auto type = resources.string("instance_type")) spec.instance_type = *type;
  resources.accept({"properties"});
  resources.ignore_with_warning("docker_args",
                                "docker_args is not used: amlrun does not run Docker on the "
                                "local target; ignored");
  resources.finish();

  MapReader distribution(root.node("distribution"), "distribution", context.diagnostics);
  if (distribution.present()) {
    auto type_node = distribution.node("type");
    auto type = distribution.string("type");
    if (!type && !type_node) {
      context.diagnostics.error(distribution.mark(), "distribution",
                                "missing 'type' (mpi, pytorch or tensorflow)");
    } else if (type == "mpi") {
      spec.distribution.type = DistributionType::mpi;
    } else if (type == "pytorch") {
      spec.distribution.type = DistributionType::pytorch;
    } else if (type == "tensorflow") {
      spec.distribution.type = DistributionType::tensorflow;
    } else if (type == "ray") {
      context.diagnostics.error(type_node->mark, "distribution.type",
                                "'ray' distribution is not supported; use mpi, pytorch or "
                                "tensorflow");
    } else if (type) {
      context.diagnostics.error(
          type_node->mark, "distribution.type",
          fmt::format("{} is not one of mpi, pytorch, tensorflow{}", util::printable(*type),
                      util::did_you_mean_suffix(*type, {"mpi", "pytorch", "tensorflow"})));
    }
    auto per_instance = distribution.integer("process_count_per_instance", 1, 1024);
    if (per_instance)
      spec.distribution.process_count_per_instance = static_cast<int>(*per_instance);
    if (spec.distribution.type == DistributionType::tensorflow) {
      read_tensorflow_layout(distribution, per_instance.has_value(), context, spec);
    } else if (type) {
      for (const char* key : {"worker_count", "parameter_server_count"}) {
        distribution.reject(key, fmt::format("{} belongs to distribution type tensorflow; for "
                                             "type {}, give process_count_per_instance",
                                             key, util::printable(*type)));
      }
    } else {
      distribution.accept({"worker_count", "parameter_server_count"});
    }
    distribution.finish();
  }

  MapReader limits(root.node("limits"), "limits", context.diagnostics);
  if (auto timeout = limits.integer("timeout", 1, 366LL * 24 * 3600)) {
    spec.timeout_seconds = *timeout;
  }
  limits.finish();
}

void check_distribution_needed(const Mark& mark, const std::string& key_path, LoadContext& context,
                               const JobSpec& spec) {
  if (spec.distribution.type != DistributionType::none || spec.total_processes() <= 1) return;
  context.diagnostics.error(
      mark, key_path,
      fmt::format("{} processes would run but no distribution is given; add distribution: "
                  "{{type: pytorch}} (torch.distributed) or {{type: mpi}} (mpirun)",
                  spec.total_processes()));
}

NodePtr path_value(NodePtr node, const std::string& key, LoadContext& context) {
  if (!node->is_map()) return node;
  MapReader reader(node, key, context.diagnostics);
  NodePtr path = reader.node("path");
  reader.accept({"type", "mode"});
  reader.finish();
  if (!path) context.diagnostics.error(node->mark, key, "missing 'path'");
  return path;
}

}  // namespace amlrun::spec::detail
