#pragma once
// The container build context of an environment: a Dockerfile (FROM the base
// image; requirement files COPYed, never pasted into RUN lines; ENV;
// WORKDIR), conda.yml / requirements.txt, and an Apptainer definition. The
// same environment always gives the same bytes (sorted, no timestamps, fixed
// file times), so image builds cache.
#include <filesystem>
#include <string>
#include <vector>

#include "lib/env/environment.hpp"

namespace amlrun::env {

struct ContextFile {
  std::string name;
  std::string content;
};

// conda.yml as generated from the environment (channels in order, sorted
// dependencies, the pip list).
std::string conda_file_text(const Environment& environment);

// The generated files, in a fixed order. For an environment with a user
// build context this is empty: that context is used as it is.
std::vector<ContextFile> generated_context(const Environment& environment, const std::string& hash);

// Writes the context into `directory` (created; must be empty if it exists)
// and returns the relative paths written; with pip packages also pip/: the
// host's pip settings (pip_settings.hpp), which the Dockerfile's pip step uses. A variable whose
// value has a control character is left out of the files (a comment says so): the run passes it to
// the container by name.
std::vector<std::string> write_build_context(const Environment& environment,
                                             const std::string& hash,
                                             const std::filesystem::path& directory);

}  // namespace amlrun::env
