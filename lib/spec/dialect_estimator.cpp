// The estimator dialect (the SDK v1 PyTorch estimator, written as YAML).
#include <fmt/format.h>

#include "lib/spec/dialects.hpp"
#include "lib/spec/package_specs.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::spec::detail {

namespace fs = std::filesystem;

namespace {

// script_params: a map flattened in order to "key value" pairs (a null value
// gives the key alone, as a flag), or a list of arguments used as they are.
std::vector<std::string> read_script_params(MapReader& root, LoadContext& context) {
  std::vector<std::string> argv;
  auto node = root.node("script_params");
  if (!node || node->is_null()) return argv;
  if (node->is_sequence()) {
    for (std::size_t i = 0; i < node->items.size(); ++i) {
      std::string path = fmt::format("script_params[{}]", i);
      if (auto text = as_string(*node->items[i], path, context.diagnostics)) argv.push_back(*text);
    }
    return argv;
  }
  if (!node->is_map()) {
    context.diagnostics.error(
        node->mark, "script_params",
        "expected a map of argument: value (or a list), got " + node->describe());
    return argv;
  }
  for (const auto& [key, value] : node->entries) {
    std::string path = join_key_path("script_params", key->value);
    argv.push_back(key->value);
    if (value->is_null()) continue;
    if (!value->is_scalar()) {
      context.diagnostics.error(value->mark, path,
                                "expected a single value, got " + value->describe() +
                                    " (write the arguments as a list to repeat a flag)");
      continue;
    }
    argv.push_back(value->value);
  }
  return argv;
}

}  // namespace

void read_estimator(MapReader& root, LoadContext& context, JobSpec& spec) {
  spec.dialect = Dialect::estimator;
  read_common(root, context, spec);

  fs::path source = context.base_dir;
  if (auto node = root.node("source_directory"); node && !node->is_null()) {
    if (auto path =
            resolve_local_path(*node, "source_directory", PathKind::directory, "source directory",
                               context, "give the source directory as a local path")) {
      source = *path;
    }
  }
  spec.code_dir = source;

  auto script_node = root.node("entry_script");
  const char* empty_script = "the entry script is empty; give the script to run, e.g. train.py";
  if (script_node && script_node->is_null()) {
    context.diagnostics.error(root.value_mark("entry_script"), "entry_script", empty_script);
  } else if (auto script = root.string("entry_script")) {
    fs::path relative = fs::path(*script).lexically_normal();
    if (util::trim(*script).empty()) {
      context.diagnostics.error(script_node->mark, "entry_script", empty_script);
    } else if (relative.is_absolute() || (!relative.empty() && *relative.begin() == "..")) {
      context.diagnostics.error(script_node->mark, "entry_script",
                                fmt::format("{} is outside source_directory; give a path relative "
                                            "to {}",
                                            util::printable(*script), source.string()));
    } else if (!fs::is_regular_file(source / relative)) {
      context.diagnostics.error(script_node->mark, "entry_script",
                                fmt::format("{} does not exist in source_directory {}",
                                            util::printable(*script), source.string()));
    } else {
      spec.argv = {"python", relative.string()};
    }
  } else if (!script_node) {
    context.diagnostics.error(root.mark(), "",
                              "missing 'entry_script' (the script to run, relative to "
                              "source_directory)");
  }
  auto params = read_script_params(root, context);
  if (!spec.argv.empty()) spec.argv.insert(spec.argv.end(), params.begin(), params.end());

  read_compute(root, "compute_target", context, spec);
  if (auto nodes = root.integer("node_count", 1, 1000))
    spec.instance_count = static_cast<int>(*nodes);
  if (auto per_node = root.integer("process_count_per_node", 1, 1024)) {
    spec.distribution.process_count_per_instance = static_cast<int>(*per_node);
  }
  if (auto backend = root.choice("distributed_backend", {"mpi", "nccl", "gloo"})) {
    spec.distribution.backend = *backend;
    spec.distribution.type = *backend == "mpi" ? DistributionType::mpi : DistributionType::pytorch;
  }
  if (spec.distribution.type == DistributionType::none && spec.total_processes() > 1) {
    std::string key = root.has("process_count_per_node") ? "process_count_per_node" : "node_count";
    context.diagnostics.error(
        root.key_mark(key), key,
        fmt::format("{} processes would run but distributed_backend is not set; add "
                    "distributed_backend: mpi, nccl or gloo",
                    spec.total_processes()));
  }

  spec.environment.conda_packages = root.checked_list("conda_packages", normalise_conda_spec);
  spec.environment.pip_packages = root.checked_list("pip_packages", normalise_pip_requirement);
  if (auto gpu = root.boolean("use_gpu")) spec.environment.use_gpu = *gpu;
  if (auto image = root.string("custom_docker_image")) spec.environment.image = *image;
  if (auto file = root.node("pip_requirements_file"); file && !file->is_null()) {
    if (auto path = resolve_local_path(*file, "pip_requirements_file", PathKind::file,
                                       "requirements file", context)) {
      spec.environment.pip_requirements_file = path->string();
    }
  }
  if (auto file = root.node("conda_dependencies_file"); file && !file->is_null()) {
    if (auto path = resolve_local_path(*file, "conda_dependencies_file", PathKind::file,
                                       "conda file", context)) {
      spec.environment.conda_file = path->string();
    }
  }
  root.ignore_with_warning("framework_version",
                           "framework_version does not pick a PyTorch version in amlrun; pin "
                           "one with pip_packages (e.g. torch==1.13.1); ignored");
  if (auto timeout = root.integer("max_run_duration_seconds", 1, 366LL * 24 * 3600)) {
    spec.timeout_seconds = *timeout;
  }
  if (auto shm = root.string("shm_size")) spec.shm_size = *shm;
}

}  // namespace amlrun::spec::detail
