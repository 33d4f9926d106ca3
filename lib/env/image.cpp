#include "lib/env/image.hpp"

#include <fmt/format.h>

#include "lib/env/context.hpp"
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
  util::SpawnOptions options;
  options.argv = {runtime, "image", "inspect", image};
  return util::run_capture(options, "", std::chrono::seconds(30)).exit_code == 0;
}

ImageResult ensure_image(const std::string& runtime, const Environment& environment,
                         const std::string& hash, const fs::path& context_dir,
                         const fs::path& environments_dir, const fs::path& log_path) {
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
    throw EnvironmentBuildError(
        fmt::format("{} build failed with exit code {}; see "
                    "logs/system/env_build.txt",
                    runtime, status));
  }
  result.seconds = elapsed();
  return result;
}

}  // namespace amlrun::env
