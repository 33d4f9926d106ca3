#pragma once
// Copying a tree of files out of the workspace (run artifacts, registered
// models) or into it (model registration), safely in both directions:
//
// - Reading never follows a symbolic link out of the tree's root: a link to
//   a regular file inside the root is copied as that file; any other link
//   (outside, dangling, to a directory) is skipped and reported.
// - Writing never leaves the destination: every directory below it is
//   opened with O_NOFOLLOW relative to its parent, and files are created
//   with O_EXCL or written beside an existing one and renamed over it, so a
//   symbolic link planted in the destination is refused or replaced, never
//   written through.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace amlrun::artifacts {

namespace fs = std::filesystem;

struct PlannedFile {
  fs::path source;       // what to read (a link's target, already checked)
  std::string relative;  // where it goes below the destination ("a/b.txt")
  std::uint64_t size = 0;
  unsigned mode = 0644;  // permission bits to give the copy
};

struct Skipped {
  std::string relative;
  std::string reason;  // "a symbolic link to /etc/passwd, outside the run"
};

struct CopyPlan {
  std::vector<PlannedFile> files;
  std::vector<std::string> directories;  // below the destination, so empty ones exist too
  std::vector<Skipped> skipped;
  std::uint64_t total_bytes = 0;
};

// Adds `source` (a file or a directory, inside `root`) to the plan, its
// files landing below `destination_prefix` ("" or "artifacts/outputs").
// `root_name` names the root in skip reasons ("the run", "DIR"). A directory
// that is `workspace` (the .amlrun folder, when it lies inside the source) is
// skipped: registering a project folder must not copy the registry into itself.
void plan_tree(CopyPlan& plan, const fs::path& root, const fs::path& source,
               const std::string& destination_prefix, const std::string& root_name,
               const fs::path& workspace = {});

// Throws InputError when `destination` is inside the workspace: copies go
// out of the workspace, never into a run or the registry.
void check_destination_outside(const fs::path& destination, const fs::path& workspace);

struct CopyProgress {
  std::uint64_t bytes_done = 0;
  std::uint64_t bytes_total = 0;
  std::size_t files_done = 0;
  std::size_t files_total = 0;
};

struct CopyOptions {
  bool hash = false;     // compute each file's sha256 while copying
  bool durable = false;  // fsync each file (what the registry promises must survive a crash)
  // Called as bytes move (often; the caller throttles what it prints).
  std::function<void(const CopyProgress&)> progress;
  // Called with each file's digest right after it was written (hash only);
  // may throw to stop the copy (a checksum that does not match), and the
  // file just written is removed.
  std::function<void(const PlannedFile&, const std::string& sha256)> check;
};

struct CopiedFile {
  std::string relative;
  std::uint64_t size = 0;
  std::string sha256;  // when hashing
};

// Copies every planned file below `destination`, which is created if missing.
// Throws InputError when the destination is in the way (a path component that
// is a file or a symbolic link), InfraError when reading or writing fails.
std::vector<CopiedFile> copy_tree(const CopyPlan& plan, const fs::path& destination,
                                  const CopyOptions& options = {});

}  // namespace amlrun::artifacts
