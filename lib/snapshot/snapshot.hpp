#pragma once
// Snapshots of a job's source directory: a content-addressed copy kept in the
// workspace, so every run records exactly the code it ran and unchanged code
// is neither re-read nor stored twice.
//
// Store layout (<workspace>/snapshots, Options::store_dir):
//   objects/ab/<sha256>     file contents, read-only, mtime pinned to
//                           1970-01-01 00:00:01 (each fan-out directory is
//                           made when first needed); mode 0444, or with
//   objects/ab/<sha256>.x   0555: the executable twin,
//   objects/ab/<sha256>.p   0400 / .x.p 0500: the owner-only twins, for
//                           source files that group and others could not
//                           both read (their restriction is kept)
//   manifests/<id>          canonical manifests (manifest.hpp); id = sha256
//   cache/<sha256 of source dir>.stat   stat cache per source directory
//   tmp/                    temp files, only where O_TMPFILE cannot be used
//
// Durability: objects and manifests are written to an unnamed temp file
// (O_TMPFILE) and linked under their final name once complete, or, where the
// filesystem or a missing /proc rules that out, written to a named file in
// tmp/ and renamed; the cache is written beside its name and renamed. Nothing
// is fsynced: a crash cannot leave a half-written file under a final name
// through a concurrent writer, and a power loss can at worst leave an object
// empty or short, which the size check below finds and the next take()
// rewrites. Per-file fsync would multiply the cost of a cold snapshot.
//
// Runs never share an inode with the store: materialize() copies (a reflink
// where the filesystem has them), so nothing a job writes, however it writes
// it, reaches what a later run receives. Objects are still read-only and
// carry a fixed mtime, and their size, mode and mtime are checked before an
// object is reused (take) or copied (materialize), which catches an edit by
// hand and a write through a run directory that an older amlrun hard-linked.
// take() replaces a modified object from the source; materialize() refuses
// to use it.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "lib/snapshot/error.hpp"
#include "lib/snapshot/manifest.hpp"

namespace amlrun::snapshot {

struct Limits {
  std::uint64_t max_bytes = 1ull << 30;  // sum of regular file sizes
  std::uint64_t max_files = 50000;       // regular files and symlinks
};

// The files to read this time (stat cache misses) and how far the copy is.
struct CopyProgress {
  std::uint64_t files_done = 0;
  std::uint64_t files_total = 0;
  std::uint64_t bytes_done = 0;
  std::uint64_t bytes_total = 0;
  bool final = false;
};

struct Options {
  std::filesystem::path store_dir;  // <workspace>/snapshots; created when missing
  Limits limits;
  // Never included, whatever the ignore files say (the workspace's .amlrun).
  // Compared by device and inode, so any spelling of the path works. The
  // store directory itself is always excluded.
  std::vector<std::filesystem::path> exclude_paths;
  // One-line warnings (a skipped FIFO, socket or device); util::warn when
  // empty. Called from the calling thread only.
  std::function<void(const std::string&)> warn;
  // Threads that read and hash files; 0: one per core, at most 4.
  unsigned threads = 0;
  // Copy progress, for a snapshot that takes a while (a cold one of a large
  // tree): called on the calling thread, at most every progress_every_ms,
  // once progress_after_ms have passed since take() began; then once more
  // with final set when the copy is done. Never called for a snapshot that
  // is quicker, so a warm one prints nothing.
  std::function<void(const CopyProgress&)> progress;
  std::int64_t progress_after_ms = 1000;
  std::int64_t progress_every_ms = 100;
};

struct Snapshot {
  std::string id;           // sha256 of the canonical manifest
  std::uint64_t files = 0;  // regular files
  std::uint64_t bytes = 0;  // their total size
  std::uint64_t symlinks = 0;
  std::uint64_t directories = 0;
  std::uint64_t hashed_files = 0;  // files read this time (stat cache misses)
  std::uint64_t hashed_bytes = 0;
};

// Takes a snapshot of source_dir into the store and returns its id.
//
// Included: regular files (content, the owner's executable bit, and whether
// only the owner may read them),
// directories (also empty ones) and symlinks (the target text; never
// followed, whether it points inside the tree or not). Skipped: any entry
// named .git, the exclude_paths, what the ignore files exclude (ignored
// directories are not read at all), and FIFOs, sockets and devices (with a
// warning naming them).
//
// Ignore files: in each directory, .amlignore if it has one, else .gitignore,
// with git's full syntax and precedence (ignore.hpp); a nested file applies to
// its subtree. .git/info/exclude and the user's global excludes are not used:
// a snapshot must not depend on who takes it.
//
// The limits are checked after the walk, before any file is read; the error
// names the largest directories and files. An unreadable file or directory is
// an error naming it; a file that changes while it is copied is read once
// more and, if it changes again, is an error naming it.
//
// Safe to run concurrently with other take() and materialize() calls on the
// same store: two takes storing the same content both succeed. A take that
// finds nothing changed (every file a fresh stat cache hit) writes nothing. Throws SnapshotError
// (exit code 2) for problems in the tree, util::InfraError (exit code 3) when the store cannot be
// written.
Snapshot take(const std::filesystem::path& source_dir, const Options& options);

// Recreates snapshot `snapshot_id` in target_dir, which must not exist or be
// an empty directory (its parent must exist). Directories are created 0755
// and symlinks with their stored target. Files are independent copies the
// job may rewrite: 0644/0755, or 0600/0700 for owner-only files (less the
// umask), with the time of the copy as their mtime. They are reflinked where
// the filesystem can (btrfs, XFS: no data is copied), else copied in the
// kernel (copy_file_range). Nothing is created outside target_dir whatever
// the manifest holds.
void materialize(const std::filesystem::path& store_dir, const std::string& snapshot_id,
                 const std::filesystem::path& target_dir);

// The manifest of a stored snapshot (for `amlrun show` and tests). Throws
// SnapshotError when the id is malformed or unknown, or the manifest does not
// match its id.
Manifest read_manifest(const std::filesystem::path& store_dir, const std::string& snapshot_id);

}  // namespace amlrun::snapshot
