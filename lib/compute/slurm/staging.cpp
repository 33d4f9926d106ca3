#include "lib/compute/slurm/staging.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <map>
#include <mutex>

#include "lib/launch/program.hpp"
#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/hash.hpp"
#include "lib/util/random.hpp"

namespace amlrun::compute {

namespace fs = std::filesystem;

namespace {

constexpr const char* k_binaries[] = {"amlrun", "amlrun-worker"};

// Hashes are computed once per process: the binaries do not change under a
// running amlrun.
std::string cached_sha256(const fs::path& path) {
  static std::mutex mutex;
  static std::map<fs::path, std::string> cache;
  std::lock_guard lock(mutex);
  auto [it, inserted] = cache.try_emplace(path);
  if (inserted) it->second = util::sha256_file(path);
  return it->second;
}

// "" when the staged folder holds exactly the binaries of `sources`, owned
// by this user and writable by nobody else; otherwise why not.
std::string staged_problem(const fs::path& staged, const std::map<std::string, fs::path>& sources) {
  try {
    check_private_to_user(staged, "the staged folder");
    for (const auto& [name, source] : sources) {
      fs::path copy = staged / name;
      for (fs::path folder = copy.parent_path(); folder != staged; folder = folder.parent_path()) {
        check_private_to_user(folder, "the staged folder");
      }
      check_private_to_user(copy, "the staged " + name);
      if (util::sha256_file(copy) != cached_sha256(source)) {
        return fmt::format("{} differs from {}", copy.string(), source.string());
      }
    }
  } catch (const util::Error& error) {
    return error.what();
  }
  return "";
}

}  // namespace

void check_private_to_user(const fs::path& path, const std::string& what) {
  struct stat info {};
  if (::lstat(path.c_str(), &info) != 0) {
    util::throw_errno(fmt::format("cannot check {} {}", what, path.string()));
  }
  if (S_ISLNK(info.st_mode)) {
    throw util::InfraError(fmt::format("{} {} is a symbolic link", what, path.string()));
  }
  if (info.st_uid != ::geteuid()) {
    throw util::InfraError(fmt::format("{} {} belongs to user {}, not to you (user {})", what,
                                       path.string(), info.st_uid, ::geteuid()));
  }
  if (info.st_mode & (S_IWGRP | S_IWOTH)) {
    throw util::InfraError(fmt::format("{} {} is writable by other users (mode {:o})", what,
                                       path.string(), info.st_mode & 07777));
  }
}

std::map<std::string, fs::path> amlrun_files() {
  fs::path self = launch::amlrun_executable();
  std::map<std::string, fs::path> sources;
  for (const char* name : k_binaries) {
    fs::path source = std::string(name) == "amlrun" ? self : self.parent_path() / name;
    std::error_code error;
    if (fs::exists(source, error)) sources[name] = source;
  }
  // amlrun's azureml shim goes along, as python/ beside the staged binary
  // (where launch::python_shim_dir looks).
  if (fs::path shim = launch::python_shim_dir(self); !shim.empty()) {
    for (const auto& entry : fs::recursive_directory_iterator(shim)) {
      if (!entry.is_regular_file() || entry.path().extension() != ".py") continue;
      std::string name = (fs::path("python") / entry.path().lexically_relative(shim)).string();
      sources[name] = entry.path();
    }
  }
  return sources;
}

StagedFiles amlrun_files_to_stage() {
  fs::path self = launch::amlrun_executable();
  StagedFiles files;
  files.sources = amlrun_files();
  // The shim's files are in the key too, so a changed shim is staged again
  // even when amlrun itself is unchanged.
  std::string shim_hashes;
  for (const auto& [name, source] : files.sources) {
    if (name.starts_with("python/")) shim_hashes += name + cached_sha256(source);
  }
  files.key = fmt::format("{}-{}", AMLRUN_VERSION,
                          util::sha256_hex(cached_sha256(self) + shim_hashes).substr(0, 16));
  return files;
}

std::string staged_source_sha256(const fs::path& source) {
  return cached_sha256(source);
}

fs::path stage_amlrun(const fs::path& shared_dir) {
  fs::path self = launch::amlrun_executable();
  if (util::is_within(shared_dir, self)) return self;
  auto [key, sources] = amlrun_files_to_stage();
  fs::path bin = shared_dir / "bin";
  fs::path staged = bin / key;
  std::error_code error;
  if (fs::exists(fs::symlink_status(staged, error))) {
    std::string problem = staged_problem(staged, sources);
    if (problem.empty()) return staged / "amlrun";
    struct stat info {};
    bool ours =
        ::lstat(staged.c_str(), &info) == 0 && !S_ISLNK(info.st_mode) && info.st_uid == ::geteuid();
    if (!ours) {
      throw util::InfraError(fmt::format(
          "the staged amlrun in {} cannot be trusted ({}); amlrun will not run it on the nodes: "
          "remove {} (or ask its owner to), or give the target a shared_dir of your own",
          shared_dir.string(), problem, staged.string()));
    }
    // Ours but changed (or half-written by a crash): stage it again.
    fs::remove_all(staged, error);
  }
  fs::create_directories(bin);
  // A directory of binaries, so not util::AtomicFile (one file): the same
  // shape for a folder, filled under a temporary name and renamed whole, so
  // a node never sees a half-staged set; a crash leaves only .staging-*.
  fs::path temporary = bin / (".staging-" + util::random_hex(6));
  fs::create_directory(temporary);
  fs::permissions(temporary, fs::perms(0755));
  for (const auto& [name, source] : sources) {
    // A copy, not a hard link: the copy must not change when the build
    // folder's binary is rebuilt in place.
    fs::create_directories((temporary / name).parent_path(), error);
    for (fs::path folder = (temporary / name).parent_path(); !error && folder != temporary;
         folder = folder.parent_path()) {
      fs::permissions(folder, fs::perms(0755), error);  // not the umask's group write
    }
    if (!error) fs::copy_file(source, temporary / name, error);
    if (!error) fs::permissions(temporary / name, fs::perms(0755), error);
    if (error) {
      std::error_code ignored;
      fs::remove_all(temporary, ignored);
      throw util::InfraError(fmt::format("cannot copy {} into {}: {}", source.string(),
                                         bin.string(), error.message()));
    }
  }
  fs::rename(temporary, staged, error);
  if (error) {
    // Another submitter staged it first: use theirs if it checks out.
    std::error_code ignored;
    fs::remove_all(temporary, ignored);
    std::string problem = staged_problem(staged, sources);
    if (!problem.empty()) {
      throw util::InfraError(
          fmt::format("cannot stage amlrun in {}: {}", staged.string(), problem));
    }
  }
  return staged / "amlrun";
}

}  // namespace amlrun::compute
