#pragma once
// Internal to lib/snapshot: the walk of a source tree, which decides what a
// snapshot holds from lstat alone (ignore files, skipped entries, the
// kernel's virtual mounts, the limits), and finds the unchanged files whose
// stored objects need not be read again.
#include <sys/types.h>

#include <compare>
#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "lib/snapshot/manifest.hpp"
#include "lib/snapshot/snapshot.hpp"
#include "lib/snapshot/stat_cache.hpp"

namespace amlrun::snapshot::detail {

namespace fs = std::filesystem;

struct Found {
  std::string path;
  EntryType type = EntryType::file;
  FileStat stat;
  std::string link_target;
  std::string sha256;
};

struct Totals {
  std::uint64_t files = 0;  // regular files and symlinks
  std::uint64_t bytes = 0;  // of the regular files
};

struct DeviceInode {
  std::uint64_t device;
  std::uint64_t inode;
  // NOLINTNEXTLINE(modernize-use-nullptr): clang-tidy 14 misreads a defaulted <=>
  auto operator<=>(const DeviceInode&) const = default;
};

struct WalkResult {
  std::vector<Found> found;
  std::vector<std::pair<std::string, std::string>> warnings;  // (path, message), sorted by path
  // The walk gave up past twice a limit: `found` is part of the tree, and
  // enough to say where it is big (`code: /` fails in a second, not after
  // reading the whole machine).
  bool stopped = false;
};

// Walks the tree open as root_fd (source_dir names it in messages) on up to
// `threads` threads, leaving out `excluded` directories. A regular file
// whose stat matches `cache` and whose object is intact in the store
// (objects_fd) gets its sha256 here. Throws SnapshotError for an unreadable
// directory or one that changed under the walk.
WalkResult walk_source(const fs::path& source_dir, int root_fd, std::set<DeviceInode> excluded,
                       const StatCache& cache, int objects_fd, const Limits& limits,
                       unsigned threads);

// The absolute spelling of a path in the source tree, for messages.
std::string source_display(const fs::path& source_dir, const std::string& relative);

}  // namespace amlrun::snapshot::detail
