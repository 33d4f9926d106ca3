#pragma once
// An environment: base image, conda and pip packages, variables, shm size —
// reduced to a canonical form whose sha256 identifies it. The hash changes
// when, and only when, something that affects the environment changes: key
// order, whitespace and comments in the files it reads do not count.
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/spec/job_spec.hpp"
#include "lib/workspace/workspace.hpp"

namespace amlrun::env {

namespace fs = std::filesystem;

enum class Mode { host, venv, container };
std::string to_string(Mode mode);
// "host", "venv", "container"; host for anything else.
Mode mode_from_string(const std::string& text);

struct Environment {
  std::string base_image;       // the image to start FROM (a default when none is given)
  std::string build_context;    // a user Dockerfile context (absolute); "" when none
  std::string dockerfile_path;  // relative to build_context
  std::string build_context_sha256;
  std::vector<std::string> pip_requirements;  // normalised, sorted, unique
  std::vector<std::string> pip_options;       // option lines of a requirements file, in order
  bool has_conda = false;
  std::vector<std::string> conda_channels;                     // in priority order
  std::vector<std::string> conda_dependencies;                 // normalised, sorted, unique
  std::vector<std::string> conda_pip;                          // the conda file's pip: list, sorted
  std::vector<std::pair<std::string, std::string>> variables;  // sorted by name
  std::string shm_size = "2g";
  bool gpu = false;
};

// Reads what a job says about its environment (and the files it names:
// requirements file, conda file, build context) into the canonical model.
// Bad package specifications and unreadable files are util::InputError or
// spec::SpecError naming the file, line and entry.
Environment resolve_environment(const spec::JobSpec& job,
                                const workspace::EnvironmentSettings& settings);

// The canonical form (sorted keys, compact when dumped) and its sha256.
nlohmann::json canonical_form(const Environment& environment);
std::string environment_hash(const Environment& environment);
Environment environment_from_canonical(const nlohmann::json& canonical);

// host when nothing is asked for; venv when packages are listed and no
// container runtime is configured; container when one is.
Mode choose_mode(const Environment& environment, const workspace::EnvironmentSettings& settings);

}  // namespace amlrun::env
