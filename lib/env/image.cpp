#include "lib/env/image.hpp"

#include <fmt/format.h>

#include "lib/env/context.hpp"
#include "lib/env/engine_api.hpp"
#include "lib/env/runtime.hpp"
#include "lib/env/venv.hpp"
#include "lib/util/file_lock.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/process.hpp"
#include "lib/util/strings.hpp"
#include "lib/util/time.hpp"

namespace amlrun::env {

namespace fs = std::filesystem;

static bool image_exists(const std::string& runtime, const std::string& image) {
  if (runtime == "apptainer") return fs::exists(image);
  if (runtime == "docker") {
    auto status = docker_engine_status("/images/" + image + "/json");
    if (status == 200) return true;
    if (status == 404) return false;
  }
  util::SpawnOptions options;
  options.argv = {runtime, "image", "inspect", image};
  return util::run_capture(options, "", std::chrono::seconds(30)).exit_code == 0;
}

// Said in place of the build's exit code when the log shows why.
// Said in place of the build's exit code when the log of this build (from
// its last "$ <command>" line on) shows why.
static std::string known_cause(const Environment& environment, const fs::path& log_path) {
  std::string log;
  try {
    log = util::read_file(log_path);
  } catch (const std::exception&) {
    return "";
  }
  if (auto last = log.rfind("\n$ "); last != std::string::npos) log.erase(0, last + 1);
  if (environment.has_conda && log.find("conda: not found") != std::string::npos) {
    return fmt::format(
        "the image {} has no conda, which conda_file and conda_packages need; name an image "
        "with conda (environment.image) or list the packages in pip_packages",
        environment.base_image);
  }
  // The legacy builder's first step is the FROM: a line other than
  // " ---> <id>" after it is why the base image could not be had.
  auto lines = util::split(log, '\n');
  for (std::size_t i = 0; i + 1 < lines.size(); ++i) {
    auto from = lines[i].find(" : FROM ");
    if (lines[i].rfind("Step 1/", 0) != 0 || from == std::string::npos) continue;
    if (lines[i + 1].rfind(" ---> ", 0) == 0) break;
    return fmt::format(
        "the base image {} is not on this machine and could not be pulled ({}); build or load "
        "it here (scripts/base-image.sh makes a local one) and set environments.cpu_image or the "
        "job's image to its tag",
        util::trim(lines[i].substr(from + 8)), util::trim(lines[i + 1]));
  }
  return "";
}

ImageStatus image_status(const std::string& runtime, const std::string& hash,
                         const fs::path& environments_dir) {
  ImageStatus status;
  status.image =
      runtime == "apptainer" ? (environments_dir / sif_name(hash)).string() : image_tag(hash);
  status.built = image_exists(runtime, status.image);
  return status;
}

ImageResult ensure_image(const std::string& runtime, const Environment& environment,
                         const std::string& hash, const fs::path& context_dir,
                         const fs::path& environments_dir, const fs::path& log_path,
                         const std::string& log_name) {
  auto start = util::monotonic_ms();
  ImageResult result;
  result.image =
      runtime == "apptainer" ? (environments_dir / sif_name(hash)).string() : image_tag(hash);
  auto elapsed = [&] { return static_cast<double>(util::monotonic_ms() - start) / 1000.0; };
  if (image_exists(runtime, result.image)) {
    result.cache_hit = true;
    result.seconds = elapsed();
    return result;
  }
  fs::create_directories(environments_dir);
  auto lock = util::FileLock::acquire(environments_dir / ("image-" + hash.substr(0, 16) + ".lock"));
  if (image_exists(runtime, result.image)) {
    result.cache_hit = true;
    result.seconds = elapsed();
    return result;
  }
  std::error_code ignored;
  fs::remove_all(context_dir, ignored);
  write_build_context(environment, hash, context_dir);
  auto argv = build_command(runtime, context_dir, hash, environments_dir);
  if (!environment.build_context.empty() && runtime != "apptainer") {
    argv.insert(argv.end() - 1, {"--file", (context_dir / environment.dockerfile_path).string()});
  }
  int status = util::run_logged(argv, log_path);
  if (status != 0) {
    std::string cause = known_cause(environment, log_path);
    throw EnvironmentBuildError(
        cause.empty()
            ? fmt::format("{} build failed with exit code {}; see {}", runtime, status, log_name)
            : fmt::format("{} build failed: {}; see {}", runtime, cause, log_name));
  }
  result.seconds = elapsed();
  return result;
}

}  // namespace amlrun::env
