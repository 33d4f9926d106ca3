#include "lib/artifacts/artifact_path.hpp"

#include <sys/stat.h>

#include <fmt/format.h>
#include <vector>

#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::artifacts {

namespace {

// Names in the directory holding `missing`, for a "did you mean".
std::vector<std::string> siblings_of(const fs::path& root, const fs::path& missing) {
  std::vector<std::string> names;
  fs::path parent = root / missing.parent_path();
  std::error_code error;
  for (fs::directory_iterator it(parent, error), end; !error && it != end; it.increment(error)) {
    names.push_back((missing.parent_path() / it->path().filename()).string());
  }
  return names;
}

}  // namespace

ArtifactPath resolve_artifact_path(const fs::path& root, std::string_view text,
                                   std::string_view option, const std::string& run_id) {
  fs::path source = util::safe_join(root, text, option);
  // Lexically: resolving links here would turn "outputs/link" into wherever
  // the link points and hide what the user named.
  fs::path relative = source.lexically_relative(root);
  if (!relative.empty() && relative.filename().empty()) {  // "outputs/model/"
    relative = relative.parent_path();
    source = root / relative;
  }
  std::string first = relative.empty() ? "" : relative.begin()->string();
  if (first != "outputs" && first != "logs") {
    // ".." is resolved by the text, never through a link: a path that was
    // written inside outputs/ or logs/ and climbs out is told so.
    std::string written = fs::path(text).begin()->string();
    if (written == "outputs" || written == "logs") {
      throw util::InputError(fmt::format(
          "{} {}: its '..' leads to {}, outside outputs/ and logs/ ('..' goes up in the path as "
          "written, never through a link)",
          option, text,
          relative.empty() || relative == "." ? "the top of the run" : relative.string()));
    }
    throw util::InputError(fmt::format(
        "{} {}: start with outputs/ or logs/ (a run's artifacts are its outputs and logs)", option,
        text));
  }
  std::error_code error;
  fs::path canonical_root = fs::canonical(root, error);
  if (error) {
    throw util::InfraError(fmt::format("cannot read {}: {}", root.string(), error.message()));
  }
  fs::path walked;
  for (const auto& part : relative) {
    walked /= part;
    struct stat st {};
    if (::lstat((root / walked).c_str(), &st) != 0) {
      throw util::InputError(
          fmt::format("{} {}: run {} has no such file or folder{}", option, text, run_id,
                      util::did_you_mean_suffix(relative.string(), siblings_of(root, relative))));
    }
    if (!S_ISLNK(st.st_mode)) continue;
    fs::path target = fs::read_symlink(root / walked, error);
    fs::path resolved = fs::canonical(root / walked, error);
    if (error) {
      throw util::InputError(fmt::format("{} {}: {} is a symbolic link to {}, which does not exist",
                                         option, text, walked.string(), target.string()));
    }
    if (!util::is_within(canonical_root, resolved)) {
      throw util::InputError(fmt::format(
          "{} {}: the path goes through {}, a symbolic link to {}, out of run {} (amlrun never "
          "follows links out of a run)",
          option, text, walked.string(), target.string(), run_id));
    }
  }
  return {source, relative.string()};
}

}  // namespace amlrun::artifacts
