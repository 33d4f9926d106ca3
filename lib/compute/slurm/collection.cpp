#include "lib/compute/slurm/collection.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cerrno>

#include "lib/launch/seal.hpp"
#include "lib/util/error.hpp"
#include "lib/util/safe_dir.hpp"

namespace amlrun::compute {

namespace fs = std::filesystem;

namespace {

// Brings shared artifacts/<name> to staging/<name>: one rename on the same
// filesystem; else a copy beside it, verified, then renamed into place.
void bring(const util::SafeDir& shared_artifacts, const util::SafeDir& staging,
           const std::string& name) {
  if (S_ISDIR(staging.type_of(name))) return;  // done before an interruption
  if (!S_ISDIR(shared_artifacts.type_of(name))) {
    staging.make_dirs(name);  // sealing left an empty one; nothing to bring
    return;
  }
  if (::renameat(shared_artifacts.fd(), name.c_str(), staging.fd(), name.c_str()) == 0) return;
  if (errno != EXDEV) {
    util::throw_errno(fmt::format("cannot move {} to {}", (shared_artifacts.path() / name).string(),
                                  (staging.path() / name).string()));
  }
  std::string partial = name + ".partial";
  if (staging.type_of(partial) != 0) fs::remove_all(staging.path() / partial);
  auto source = shared_artifacts.dir(name);
  auto copy = staging.make_dirs(partial);
  util::copy_tree(source, copy);
  if (util::list_files(source) != util::list_files(copy)) {
    throw util::InfraError(fmt::format("the copy of {} in {} does not match it (files or sizes)",
                                       source.path().string(), copy.path().string()));
  }
  if (::renameat(staging.fd(), partial.c_str(), staging.fd(), name.c_str()) != 0) {
    util::throw_errno(fmt::format("cannot rename {}", (staging.path() / partial).string()));
  }
}

// Copies a file of the shared run directory's top level (the batch output,
// the batch script) into `to`, replacing what is there; links are skipped.
void copy_file_into(const util::SafeDir& from, const std::string& name, const util::SafeDir& to,
                    const std::function<void(const std::string&)>& log) {
  mode_t type = from.type_of(name);
  if (type == 0) return;
  if (!S_ISREG(type)) {
    log(
        fmt::format("{} in the shared run directory is not a regular file (a symbolic link?); it "
                    "was not followed and is not kept",
                    name));
    return;
  }
  util::UniqueFd source = from.open_file(name, O_RDONLY);
  std::string data = util::read_fd(source.get(), from.path() / name);
  to.write_file(name, data, 0644);
}

}  // namespace

void put_collected_artifacts_in_place(const util::SafeDir& local_root,
                                      const store::RunLayout& local) {
  // An artifacts/ left by an older amlrun (collected in place) gives way.
  if (local_root.type_of(store::k_artifacts_dir) != 0) fs::remove_all(local.artifacts());
  if (::renameat(local_root.fd(), local.collecting().filename().c_str(), local_root.fd(),
                 store::k_artifacts_dir) != 0) {
    util::throw_errno(fmt::format("cannot rename {}", local.collecting().string()));
  }
}

bool is_collected(const store::RunLayout& local) {
  std::error_code error;
  return fs::is_directory(fs::symlink_status(local.artifacts(), error)) &&
         !fs::exists(fs::symlink_status(local.collecting(), error));
}

CollectionResult collect_run(const store::SlurmRunLayout& shared, const store::RunLayout& local,
                             const std::function<void(const std::string&)>& log) {
  CollectionResult result;
  auto local_root = util::SafeDir::open(local.root());
  std::error_code error;
  bool shared_exists = fs::is_directory(fs::symlink_status(shared.root(), error));
  if (!shared_exists && !fs::exists(fs::symlink_status(local.collecting(), error))) {
    // Collected before, and the shared copy removed: nothing to do.
    local_root.make_dirs(store::RunTree::relative_outputs());
    local_root.make_dirs(store::RunTree::relative_logs());
    return result;
  }
  auto staging = local_root.make_dirs(local.collecting().filename().string());
  if (shared_exists) {
    // The driver seals when it sees the ranks end; when Slurm ended the job
    // first, the working directory is sealed here, by the same rules.
    if (launch::has_unsealed_working_directory(shared)) {
      result.warnings = launch::seal_working_directory(shared, log).warnings;
    }
    auto shared_root = util::SafeDir::open(shared.root());
    auto shared_artifacts = shared_root.make_dirs(store::k_artifacts_dir);
    for (const char* name : {store::k_job_outputs_dir, store::k_job_logs_dir}) {
      bring(shared_artifacts, staging, name);
    }
    auto system =
        staging.make_dirs(fmt::format("{}/{}", store::k_job_logs_dir, store::k_system_logs_dir));
    for (const auto& entry : shared_root.list()) {
      if (store::SlurmRunLayout::is_batch_output_name(entry.name) ||
          entry.name == store::SlurmRunLayout::k_batch_script_file) {
        copy_file_into(shared_root, entry.name, system, log);
      }
    }
  } else {
    for (const char* name : {store::k_job_outputs_dir, store::k_job_logs_dir}) {
      staging.make_dirs(name);
    }
  }
  put_collected_artifacts_in_place(local_root, local);
  // Only now, with everything home, does the shared copy go.
  fs::remove_all(shared.root(), error);
  if (error) log(fmt::format("cannot remove {}: {}", shared.root().string(), error.message()));
  return result;
}

}  // namespace amlrun::compute
