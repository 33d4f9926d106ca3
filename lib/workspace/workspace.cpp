#include "lib/workspace/workspace.hpp"

#include <fmt/format.h>

#include "lib/spec/reader.hpp"
#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/names.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::workspace {

namespace {

constexpr std::uint64_t k_max_config_bytes = 1ull << 20;

const char* k_default_config =
    R"(# amlrun workspace settings. Every key is optional; the values shown are the
# defaults.

snapshot:
  max_bytes: 1073741824   # a source directory larger than this is refused
  max_files: 50000

local:
  kill_grace_seconds: 10  # on timeout or cancel: SIGTERM, then SIGKILL after this long
  tracking: true          # false: no MLflow endpoint, the job's own MLFLOW_* settings apply

environments:
  python: python3               # interpreter that venvs are made from
  system_site_packages: false   # true: venvs also see that interpreter's packages
  # runtime: podman             # docker | podman | apptainer: run jobs in containers
  cpu_image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04
  gpu_image: mcr.microsoft.com/azureml/openmpi4.1.0-cuda11.8-cudnn8-ubuntu22.04

# Named compute targets (select one with `compute: NAME` in a job or --compute NAME):
# compute:
#   gpu-cluster:
#     type: slurm
#     partition: gpu
#     shared_dir: /shared/amlrun
)";

const char* k_gitignore = R"(# amlrun's run history, snapshots and caches belong to this machine.
*
!.gitignore
!config.yml
)";

}  // namespace

const ComputeTargetConfig* Config::find_target(const std::string& name) const {
  for (const auto& target : compute) {
    if (target.name == name) return &target;
  }
  return nullptr;
}

Workspace::Workspace(fs::path root, Config config)
    : m_root(std::move(root)), m_config(std::move(config)) {}

fs::path Workspace::run_dir(const std::string& run_id) const {
  util::check_name("run", run_id);
  return runs_dir() / run_id;
}

std::optional<fs::path> find_workspace(const fs::path& start) {
  fs::path current = fs::absolute(start).lexically_normal();
  for (;;) {
    fs::path candidate = current / k_directory_name;
    std::error_code error;
    if (fs::is_directory(candidate, error)) return candidate;
    if (!current.has_parent_path() || current.parent_path() == current) return std::nullopt;
    current = current.parent_path();
  }
}

fs::path create_workspace(const fs::path& root) {
  util::check_directory_path(root, "the workspace");
  std::error_code error;
  for (const fs::path& dir : {root, root / "runs", root / "snapshots", root / "environments",
                              root / "models", root / "cache"}) {
    fs::create_directories(dir, error);
    if (error) {
      throw util::InfraError(fmt::format("cannot create {}: {}", dir.string(), error.message()));
    }
  }
  if (!fs::exists(root / "config.yml"))
    util::write_file_atomic(root / "config.yml", k_default_config);
  if (!fs::exists(root / ".gitignore")) util::write_file_atomic(root / ".gitignore", k_gitignore);
  return root;
}

// --workspace may name the .amlrun directory itself or the directory that
// holds (or should hold) it.
static fs::path normalise_root(const fs::path& given) {
  fs::path path = fs::absolute(given).lexically_normal();
  if (path.filename().empty()) path = path.parent_path();
  if (path.filename() == k_directory_name) return path;
  if (fs::is_directory(path / k_directory_name)) return path / k_directory_name;
  if (fs::exists(path / "config.yml") || fs::exists(path / "index.db")) return path;
  return path / k_directory_name;
}

Workspace open_workspace(const OpenOptions& options) {
  fs::path root;
  if (options.explicit_root) {
    root = normalise_root(*options.explicit_root);
  } else if (auto found = find_workspace(options.start_dir)) {
    root = *found;
  } else if (options.create_if_missing) {
    root = fs::absolute(options.start_dir).lexically_normal() / k_directory_name;
  } else {
    throw util::InputError(fmt::format(
        "no amlrun workspace in {} or any directory above it; run 'amlrun init' there (or pass "
        "--workspace DIR)",
        fs::absolute(options.start_dir).lexically_normal().string()));
  }
  if (!fs::is_directory(root)) {
    if (!options.create_if_missing) {
      throw util::InputError(fmt::format(
          "workspace {} does not exist; run 'amlrun init' to create it", root.string()));
    }
    create_workspace(root);
    if (options.notice) {
      options.notice(
          fmt::format("created workspace {} ('amlrun init' does this explicitly)", root.string()));
    }
  } else {
    create_workspace(root);  // fills in anything missing from an older layout
  }
  return Workspace(root, load_config(root / "config.yml"));
}

Config load_config(const fs::path& config_path) {
  Config config;
  if (!fs::exists(config_path)) return config;
  auto source = std::make_shared<spec::Source>();
  source->name = config_path.string();
  source->text = util::read_user_file(config_path, k_max_config_bytes);
  spec::Diagnostics diagnostics;
  spec::NodePtr root = spec::parse_yaml(source, diagnostics);
  if (root && !root->is_null() && !diagnostics.has_errors()) {
    spec::MapReader top(root, "", diagnostics);
    spec::MapReader snapshot(top.node("snapshot"), "snapshot", diagnostics);
    if (auto v = snapshot.integer("max_bytes", 1, 1ll << 50)) config.snapshot_max_bytes = *v;
    if (auto v = snapshot.integer("max_files", 1, 100000000)) config.snapshot_max_files = *v;
    // Every run gets copies now (hard links let a run change what later runs
    // receive); the key is still read so that configs written before load.
    (void)snapshot.choice("materialize", {"hardlink", "copy"});
    snapshot.finish();
    spec::MapReader local(top.node("local"), "local", diagnostics);
    if (auto v = local.integer("kill_grace_seconds", 0, 3600))
      config.kill_grace_seconds = static_cast<int>(*v);
    if (auto v = local.boolean("tracking")) config.tracking = *v;
    local.finish();
    spec::MapReader environments(top.node("environments"), "environments", diagnostics);
    auto& settings = config.environments;
    if (auto v = environments.string("python")) settings.python = *v;
    if (auto v = environments.boolean("system_site_packages")) settings.system_site_packages = *v;
    if (auto v = environments.choice("runtime", {"docker", "podman", "apptainer"}))
      settings.runtime = *v;
    if (auto v = environments.string("cpu_image")) settings.cpu_image = *v;
    if (auto v = environments.string("gpu_image")) settings.gpu_image = *v;
    environments.finish();
    auto compute = top.node("compute");
    if (compute && compute->is_map()) {
      for (const auto& [key, value] : compute->entries) {
        std::string path = spec::join_key_path("compute", key->value);
        if (!util::is_valid_name(key->value) || key->value == "local") {
          diagnostics.error(key->mark, path,
                            key->value == "local"
                                ? std::string("'local' is the built-in target; choose another name")
                                : fmt::format("invalid compute target name {}: use 1-128 "
                                              "characters from [A-Za-z0-9._-], starting with a "
                                              "letter or digit",
                                              util::printable(key->value)));
          continue;
        }
        spec::MapReader target(value, path, diagnostics);
        auto type = target.choice("type", {"slurm"});
        if (!type && target.present() && !target.has("type")) {
          diagnostics.error(target.mark(), path, "missing 'type' (slurm)");
        }
        if (type) config.compute.push_back(ComputeTargetConfig{key->value, *type, value});
        // The target's own settings are checked by its module when used.
      }
    } else if (compute && !compute->is_null()) {
      diagnostics.error(compute->mark, "compute", "expected a map of target names");
    }
    top.finish();
  } else if (root && !root->is_null() && !root->is_map()) {
    diagnostics.error(root->mark, "", "expected a map of settings");
  }
  if (diagnostics.has_errors()) {
    throw spec::SpecError(source->name, diagnostics.errors_in_file_order());
  }
  return config;
}

}  // namespace amlrun::workspace
