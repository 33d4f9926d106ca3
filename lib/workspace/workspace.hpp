#pragma once
// The workspace: a `.amlrun/` directory holding run history, snapshots,
// environments, models and the workspace config (config.yml). Found by
// walking up from the current directory, or named by --workspace /
// AMLRUN_WORKSPACE (DESIGN.md vocabulary).
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "lib/spec/diagnostics.hpp"
#include "lib/spec/yaml_tree.hpp"

namespace amlrun::workspace {

namespace fs = std::filesystem;

inline constexpr const char* k_directory_name = ".amlrun";

// A named compute target from config.yml; its settings are read by the
// target's own module (lib/compute), which reports errors at their position.
struct ComputeTargetConfig {
  std::string name;
  std::string type;  // "slurm", ...
  spec::NodePtr settings;
};

// How environments are materialised on this workspace's machines.
struct EnvironmentSettings {
  std::string python = "python3";     // the interpreter venvs are made from (PATH lookup)
  bool system_site_packages = false;  // venvs see the interpreter's packages (e.g. Debian's torch)
  std::string runtime;                // docker | podman | apptainer; empty: no containers
  std::string cpu_image = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04";
  std::string gpu_image = "mcr.microsoft.com/azureml/openmpi4.1.0-cuda11.8-cudnn8-ubuntu22.04";
};

struct Config {
  std::uint64_t snapshot_max_bytes = 1ull << 30;
  std::uint64_t snapshot_max_files = 50000;
  int kill_grace_seconds = 10;  // SIGTERM → SIGKILL on timeout and cancel
  // Local runs get their own MLflow endpoint (MLFLOW_TRACKING_URI, ...);
  // false leaves the job's own MLflow settings alone.
  bool tracking = true;
  EnvironmentSettings environments;
  std::vector<ComputeTargetConfig> compute;
  const ComputeTargetConfig* find_target(const std::string& name) const;
};

class Workspace {
 public:
  Workspace(fs::path root, Config config);
  const fs::path& root() const { return m_root; }  // the .amlrun directory
  fs::path project_dir() const { return m_root.parent_path(); }
  fs::path config_path() const { return m_root / "config.yml"; }
  fs::path index_path() const { return m_root / "index.db"; }
  fs::path runs_dir() const { return m_root / "runs"; }
  fs::path snapshots_dir() const { return m_root / "snapshots"; }
  fs::path environments_dir() const { return m_root / "environments"; }
  fs::path models_dir() const { return m_root / "models"; }
  fs::path cache_dir() const { return m_root / "cache"; }
  // runs/<id>; the id must be a valid name (checked), so this never leaves runs/.
  fs::path run_dir(const std::string& run_id) const;
  const Config& config() const { return m_config; }

 private:
  fs::path m_root;
  Config m_config;
};

// The nearest `.amlrun` directory at or above `start`; nullopt when none.
std::optional<fs::path> find_workspace(const fs::path& start);

// Creates the layout (idempotent) and a commented config.yml when missing.
// Returns the .amlrun directory.
fs::path create_workspace(const fs::path& root);

struct OpenOptions {
  std::optional<fs::path> explicit_root;           // --workspace or AMLRUN_WORKSPACE
  fs::path start_dir;                              // where to walk up from
  bool create_if_missing = false;                  // submit creates one; show/stream do not
  std::function<void(const std::string&)> notice;  // the one-line "created ..." notice
};

// Resolves and opens the workspace; throws util::InputError when there is none
// ("no amlrun workspace here or above /x; run amlrun init") and
// spec::SpecError for a broken config.yml.
Workspace open_workspace(const OpenOptions& options);

// Reads config.yml (all errors at once, with positions).
Config load_config(const fs::path& config_path);

}  // namespace amlrun::workspace
