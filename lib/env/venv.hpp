#pragma once
// venv mode: a Python virtual environment per environment hash under the
// workspace, built once with pip (pip's own configuration and PIP_* variables
// apply, so --find-links or a private index work), shared by every run of
// that environment. A lock makes concurrent runs build it once.
#include <filesystem>
#include <string>

#include "lib/env/environment.hpp"

namespace amlrun::env {

struct VenvRequest {
  Environment environment;
  std::string hash;
  std::filesystem::path environments_dir;  // <workspace>/environments
  workspace::EnvironmentSettings settings;
  std::filesystem::path log_path;                      // the build's output is appended here
  std::string log_name = "logs/system/env_build.txt";  // how messages name the log
};

struct VenvResult {
  std::filesystem::path directory;
  bool cache_hit = false;
  double seconds = 0;  // build time, or the time to find it
  std::string python;  // the interpreter it was made from
};

class EnvironmentBuildError : public util::Error {
 public:
  explicit EnvironmentBuildError(const std::string& message)
      : util::Error(ExitCode::run_failed, message) {}
};

// Returns the ready venv, building it first when needed. A build that fails
// leaves no half-made venv behind and throws EnvironmentBuildError naming the
// step and the log.
VenvResult ensure_venv(const VenvRequest& request);

// The venv directory an environment maps to with these settings (the key
// also covers the interpreter, so a changed python3 gets a fresh venv).
std::filesystem::path venv_directory(const VenvRequest& request,
                                     const std::filesystem::path& python);

}  // namespace amlrun::env
