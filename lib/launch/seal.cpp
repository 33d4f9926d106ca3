#include "lib/launch/seal.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include "lib/util/safe_dir.hpp"

namespace amlrun::launch {

namespace fs = std::filesystem;

namespace {

using Log = std::function<void(const std::string&)>;

std::string describe_type(mode_t type) {
  if (S_ISLNK(type)) return "a symbolic link";
  if (S_ISREG(type)) return "a file";
  return "something that is not a directory";
}

// Moves every entry of `from` into `to`. Directories present on both sides
// are merged; any other name taken in `to` keeps what is there (amlrun's own
// file), and the job's entry is kept beside it as NAME.job.
void merge(const util::SafeDir& from, const util::SafeDir& to, const std::string& shown,
           const Log& log) {
  for (const auto& entry : from.list()) {
    if (from.move_no_replace(entry.name, to, entry.name)) continue;
    std::string here = shown + "/" + entry.name;
    if (S_ISDIR(entry.type) && S_ISDIR(to.type_of(entry.name))) {
      merge(from.dir(entry.name), to.dir(entry.name), here, log);
      continue;
    }
    std::string kept = entry.name + ".job";
    for (int n = 2; !from.move_no_replace(entry.name, to, kept); ++n) {
      kept = fmt::format("{}.job{}", entry.name, n);
    }
    log(fmt::format("{} has the name of a file amlrun keeps there; the job's is kept as {}", here,
                    kept));
  }
}

// Seals one of ./outputs and ./logs into artifacts/<name>.
void seal_one(const util::SafeDir* working_dir, const util::SafeDir& artifacts,
              const std::string& name, SealResult& result, const Log& log) {
  std::string shown = "./" + name;
  mode_t type = working_dir ? working_dir->type_of(name) : 0;
  if (S_ISDIR(type)) {
    // The common case: artifacts/<name> does not exist yet and one rename
    // does it (for logs/ it exists: amlrun's captures are already there).
    if (!working_dir->move_no_replace(name, artifacts, name)) {
      merge(working_dir->dir(name), artifacts.dir(name), shown, log);
    }
  } else {
    std::string warning =
        type == 0 ? fmt::format("{} was deleted by the job, so nothing it held is kept", shown)
                  : fmt::format(
                        "{} was replaced by {} in the job; it was not followed and "
                        "nothing of it is kept",
                        shown, describe_type(type));
    if (name == store::k_job_logs_dir && type == 0) {
      warning = fmt::format(
          "{} was deleted by the job; what it held is lost, but amlrun's own copies (stdout, "
          "stderr, metrics, system logs) are kept",
          shown);
    }
    log(warning);
    result.warnings.push_back(warning);
  }
  artifacts.make_dirs(name);
}

}  // namespace

SealResult seal_working_directory(const store::RunTree& tree, const Log& log) {
  SealResult result;
  try {
    auto root = util::SafeDir::open(tree.root());
    auto artifacts = root.make_dirs(store::k_artifacts_dir);
    auto working_dir = root.find_dir(store::k_working_dir);
    for (const char* name : {store::k_job_outputs_dir, store::k_job_logs_dir}) {
      try {
        seal_one(working_dir ? &*working_dir : nullptr, artifacts, name, result, log);
      } catch (const std::exception& error) {
        std::string warning = fmt::format("./{} could not be kept in full: {}", name, error.what());
        log(warning);
        result.warnings.push_back(warning);
      }
    }
  } catch (const std::exception& error) {
    std::string warning = fmt::format("the run's files could not be sealed: {}", error.what());
    log(warning);
    result.warnings.push_back(warning);
  }
  std::error_code error;
  // remove_all removes links themselves, never what they point to.
  fs::remove_all(tree.working_dir(), error);
  if (error) log(fmt::format("cannot remove the working directory: {}", error.message()));
  return result;
}

bool has_unsealed_working_directory(const store::RunTree& tree) {
  std::error_code error;
  return fs::is_directory(fs::symlink_status(tree.working_dir(), error));
}

}  // namespace amlrun::launch
