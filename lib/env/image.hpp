#pragma once
// container mode: the environment's image, built once per hash and reused
// (amlrun-env:<hash> for docker/podman, a .sif file for apptainer).
#include <filesystem>
#include <string>

#include "lib/env/environment.hpp"

namespace amlrun::env {

struct ImageResult {
  std::string image;  // the tag, or the .sif path
  bool cache_hit = false;
  double seconds = 0;
};

// Builds the image unless it exists: writes the build context into
// context_dir and runs the runtime's build with its output appended to
// log_path. Concurrent callers for one environment build it once (a lock
// per hash under environments_dir; the others find it built). A cache hit is
// one metadata look-up (`<runtime> image inspect`). Throws
// EnvironmentBuildError naming the log (as `log_name`) when the build fails.
ImageResult ensure_image(const std::string& runtime, const Environment& environment,
                         const std::string& hash, const std::filesystem::path& context_dir,
                         const std::filesystem::path& environments_dir,
                         const std::filesystem::path& log_path,
                         const std::string& log_name = "logs/system/env_build.txt");

// Whether the environment's image exists (a tag for docker/podman, the .sif
// file for apptainer), and its name.
struct ImageStatus {
  std::string image;
  bool built = false;
};
ImageStatus image_status(const std::string& runtime, const std::string& hash,
                         const std::filesystem::path& environments_dir);

}  // namespace amlrun::env
