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
// log_path. Throws util::Error naming the log when the build fails.
ImageResult ensure_image(const std::string& runtime, const Environment& environment,
                         const std::string& hash, const std::filesystem::path& context_dir,
                         const std::filesystem::path& environments_dir,
                         const std::filesystem::path& log_path);

}  // namespace amlrun::env
