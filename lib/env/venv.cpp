#include "lib/env/venv.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include "lib/env/context.hpp"
#include "lib/util/file_lock.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/hash.hpp"
#include "lib/util/process.hpp"
#include "lib/util/strings.hpp"
#include "lib/util/time.hpp"

namespace amlrun::env {

namespace fs = std::filesystem;

namespace {

constexpr const char* k_ready_marker = ".amlrun-environment.json";

fs::path resolve_python(const workspace::EnvironmentSettings& settings) {
  auto found = util::find_executable(settings.python);
  if (!found) {
    throw EnvironmentBuildError(fmt::format(
        "cannot build the environment: the interpreter '{}' (environments.python) is not in PATH",
        settings.python));
  }
  return fs::canonical(*found);
}

// Runs one build step with its output appended to the log.
void run_step(const std::vector<std::string>& argv, const fs::path& log_path,
              const std::string& log_name, const std::string& what) {
  int status = util::run_logged(argv, log_path);
  if (status != 0) {
    throw EnvironmentBuildError(
        fmt::format("{} failed with exit code {}; see {}", what, status, log_name));
  }
}

}  // namespace

fs::path venv_directory(const VenvRequest& request, const fs::path& python) {
  struct stat st {};
  ::stat(python.c_str(), &st);
  // The interpreter's identity without running it: path, size, mtime.
  std::string key = util::sha256_hex(fmt::format(
      "{}\n{}\n{}\n{}\n{}", request.hash, python.string(), st.st_size, st.st_mtim.tv_sec,
      request.settings.system_site_packages ? "system-site-packages" : "isolated"));
  return request.environments_dir / ("venv-" + key.substr(0, 24));
}

VenvResult ensure_venv(const VenvRequest& request) {
  auto start = util::monotonic_ms();
  const auto& e = request.environment;
  if (e.has_conda) {
    if (!util::find_executable("conda")) {
      std::vector<std::string> listed = e.conda_dependencies;
      throw EnvironmentBuildError(fmt::format(
          "the environment lists conda packages ({}), but conda is not installed here; install "
          "Miniforge, or list the packages under pip_packages",
          util::join(listed, ", ")));
    }
  }
  fs::path python = resolve_python(request.settings);
  fs::path directory = venv_directory(request, python);
  fs::create_directories(request.environments_dir);
  VenvResult result{directory, false, 0, python.string()};
  auto elapsed = [&] { return static_cast<double>(util::monotonic_ms() - start) / 1000.0; };
  if (fs::exists(directory / k_ready_marker)) {  // the common case: no lock needed
    result.cache_hit = true;
    result.seconds = elapsed();
    return result;
  }
  auto lock = util::FileLock::acquire(fs::path(directory.string() + ".lock"));
  if (fs::exists(directory / k_ready_marker)) {  // another run built it while we waited
    result.cache_hit = true;
    result.seconds = elapsed();
    return result;
  }
  // A directory without the marker is a build that died half-way.
  fs::remove_all(directory);
  try {
    if (e.has_conda) {
      // Conda packages need a conda environment instead of a venv; pip
      // then installs into it the same way.
      fs::path conda_file = fs::path(directory.string() + ".conda.yml");
      util::write_file_atomic(conda_file, conda_file_text(e));
      run_step(
          {"conda", "env", "create", "--prefix", directory.string(), "--file", conda_file.string()},
          request.log_path, request.log_name, "conda env create");
    } else {
      std::vector<std::string> create = {python.string(), "-m", "venv"};
      if (request.settings.system_site_packages) create.push_back("--system-site-packages");
      create.push_back(directory.string());
      run_step(create, request.log_path, request.log_name, "creating the virtual environment");
    }
    std::string requirements;
    for (const auto& option : e.pip_options) requirements += option + "\n";
    for (const auto& requirement : e.pip_requirements) requirements += requirement + "\n";
    for (const auto& requirement : e.conda_pip) requirements += requirement + "\n";
    if (!requirements.empty()) {
      util::write_file_atomic(directory / "amlrun-requirements.txt", requirements);
      run_step({(directory / "bin" / "python").string(), "-m", "pip", "install",
                "--disable-pip-version-check", "--no-input", "--requirement",
                (directory / "amlrun-requirements.txt").string()},
               request.log_path, request.log_name, "pip install");
    }
  } catch (...) {
    std::error_code ignored;
    fs::remove_all(directory, ignored);
    throw;
  }
  result.seconds = elapsed();
  nlohmann::json marker = {{"hash", request.hash},
                           {"python", python.string()},
                           {"system_site_packages", request.settings.system_site_packages},
                           {"built_at", util::utc_iso8601(util::Clock::now())},
                           {"build_seconds", result.seconds}};
  util::write_file_atomic(directory / k_ready_marker, marker.dump(2) + "\n");
  return result;
}

}  // namespace amlrun::env
