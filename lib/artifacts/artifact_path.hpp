#pragma once
// A path into a run's artifacts as a user names it (`amlrun download
// --prefix outputs/model`, `amlrun model register --path outputs/model`):
// one resolver, so both commands accept and refuse the same paths with the
// same words.
#include <filesystem>
#include <string>
#include <string_view>

namespace amlrun::artifacts {

namespace fs = std::filesystem;

struct ArtifactPath {
  fs::path source;       // below root, joined lexically (links are the tree copy's to judge)
  std::string relative;  // "outputs/model", normalised
};

// Resolves `text` below `root` (the run's sealed artifacts, or its working
// directory before they are sealed). InputError, starting with `option`
// ("--prefix"), when the path leaves root, does not start with outputs/ or
// logs/, does not exist (with a "did you mean"), or goes through a
// symbolic link that leads out of the run or nowhere: links are never
// followed out of a run.
ArtifactPath resolve_artifact_path(const fs::path& root, std::string_view text,
                                   std::string_view option, const std::string& run_id);

}  // namespace amlrun::artifacts
