// take(): the passes of a snapshot, each in its own file: walk the tree
// (walker.cpp), check the limits (limits.cpp), copy what changed into the
// store (copier.cpp, object_store.cpp), write the manifest and the stat
// cache. materialize() is in materialize.cpp.
#include "lib/snapshot/snapshot.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <fmt/format.h>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <set>

#include "lib/snapshot/copier.hpp"
#include "lib/snapshot/error.hpp"
#include "lib/snapshot/limits.hpp"
#include "lib/snapshot/object_store.hpp"
#include "lib/snapshot/stat_cache.hpp"
#include "lib/snapshot/walker.hpp"
#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/hash.hpp"
#include "lib/util/log.hpp"
#include "lib/util/time.hpp"
#include "lib/util/timing.hpp"

namespace amlrun::snapshot {

namespace fs = std::filesystem;
using namespace detail;
using util::UniqueFd;

Snapshot take(const fs::path& source_dir, const Options& options) {
  // Entries changed from this moment on are "racy" for the stat cache.
  const std::int64_t started_ns = filesystem_clock_ns();
  const std::int64_t started_ms = util::monotonic_ms();
  util::timing_mark("snapshot: begin");
  std::function<void(const std::string&)> warn = options.warn;
  if (!warn) warn = [](const std::string& message) { util::warn(message); };

  UniqueFd root_fd(::open(source_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd) {
    int error = errno;
    if (error == ENOENT) {
      throw SnapshotError(
          fmt::format("source directory {} does not exist", display_path(source_dir.string())));
    }
    if (error == ENOTDIR) {
      throw SnapshotError(
          fmt::format("source directory {} is not a directory", display_path(source_dir.string())));
    }
    if (error == ELOOP) {
      throw SnapshotError(fmt::format(
          "source directory {} is a symbolic link loop: following its links never reaches a "
          "directory; point the link at the real directory",
          display_path(source_dir.string())));
    }
    throw SnapshotError(fmt::format("cannot read source directory {}: {}",
                                    display_path(source_dir.string()), std::strerror(error)));
  }
  Store store(options.store_dir);
  store.remove_stale_temp_files();
  util::timing_mark("snapshot: store opened");

  std::set<DeviceInode> excluded;
  std::vector<fs::path> exclude_paths = options.exclude_paths;
  exclude_paths.push_back(options.store_dir);
  for (const fs::path& path : exclude_paths) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) excluded.insert(DeviceInode{st.st_dev, st.st_ino});
  }

  // 1. Walk: what is in the snapshot, from lstat alone; unchanged files
  //    (stat cache hit, object intact) get their hash on the way.
  unsigned threads = worker_count(options.threads);
  fs::path cache_file = cache_file_for(options.store_dir, source_dir);
  StatCache old_cache = StatCache::load(cache_file);
  util::timing_mark("snapshot: stat cache loaded");
  WalkResult walk = walk_source(source_dir, root_fd.get(), std::move(excluded), old_cache,
                                store.objects_fd(), options.limits, threads);
  util::timing_mark("snapshot: walked");
  for (const auto& [path, message] : walk.warnings) warn(message);
  std::vector<Found>& found = walk.found;

  // 2. Limits, before anything is read or stored.
  check_limits(source_dir, found, options.limits, walk.stopped);

  // 3. Copy and hash what changed.
  std::vector<Found*> work;
  Snapshot result;
  for (Found& entry : found) {
    if (entry.type == EntryType::directory) {
      ++result.directories;
    } else if (entry.type == EntryType::symlink) {
      ++result.symlinks;
    } else {
      ++result.files;
      result.bytes += entry.stat.size;
      if (entry.sha256.empty()) work.push_back(&entry);
    }
  }
  std::atomic<std::uint64_t> hashed_bytes{0};
  CopyTick tick;
  if (options.progress) {
    CopyProgress progress;
    progress.files_total = work.size();
    for (const Found* entry : work) progress.bytes_total += entry->stat.size;
    std::int64_t next_ms = started_ms + options.progress_after_ms;
    // Its state is its own (by value): the tick outlives this block.
    tick = [&options, progress, next_ms, reported = false](std::uint64_t files, std::uint64_t bytes,
                                                           bool end) mutable {
      // A clock read per file copied: nanoseconds against a file's copy.
      if (end ? !reported : util::monotonic_ms() < next_ms) return;
      progress.files_done = files;
      progress.bytes_done = bytes;
      progress.final = end;
      options.progress(progress);
      reported = true;
      next_ms = util::monotonic_ms() + options.progress_every_ms;
    };
  }
  copy_all(source_dir, root_fd.get(), store, work, threads, hashed_bytes, tick);
  result.hashed_files = work.size();
  result.hashed_bytes = hashed_bytes;
  util::timing_mark("snapshot: copied");

  // 4. The manifest names the snapshot.
  std::sort(found.begin(), found.end(),
            [](const Found& a, const Found& b) { return a.path < b.path; });
  std::vector<Entry> entries;
  entries.reserve(found.size());
  std::vector<StatCache::NewEntry> cache_entries;
  cache_entries.reserve(result.files);
  for (Found& item : found) {
    Entry entry;
    entry.path = std::move(item.path);
    entry.type = item.type;
    if (item.type == EntryType::file) {
      FileKind kind = kind_of_mode(item.stat.mode);
      entry.executable = kind.executable;
      entry.owner_only = kind.owner_only;
      entry.size = item.stat.size;
      entry.sha256 = std::move(item.sha256);
    } else if (item.type == EntryType::symlink) {
      entry.link_target = std::move(item.link_target);
      entry.size = entry.link_target.size();
    }
    entries.push_back(std::move(entry));
    if (item.type == EntryType::file) {
      cache_entries.push_back({entries.back().path, item.stat, entries.back().sha256});
    }
  }
  std::string text = serialize_manifest(entries);
  result.id = util::sha256_hex(text);
  store.write_manifest(result.id, text);
  util::timing_mark("snapshot: manifest");

  // 5. The cache for next time; losing it only costs a re-read. When every
  //    file was a fresh hit and no path came or went, the new cache would
  //    differ from the old one only in its start time, and every entry is
  //    already older than the old start time (that is what a fresh hit
  //    means), so the old file stays as it is: an unchanged tree is
  //    snapshotted without writing anything.
  bool cache_unchanged = work.empty() && old_cache.size() == cache_entries.size();
  try {
    if (!cache_unchanged) StatCache::save(cache_file, started_ns, cache_entries);
  } catch (const std::exception& error) {
    warn(fmt::format(
        "could not save the snapshot stat cache ({}); the next snapshot will read every file",
        error.what()));
  }
  util::timing_mark("snapshot: stat cache saved");
  return result;
}

}  // namespace amlrun::snapshot
