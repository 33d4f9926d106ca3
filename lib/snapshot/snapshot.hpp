#pragma once
// Snapshots of a job's source directory: a content-addressed copy kept in the
// workspace, so every run records exactly the code it ran and unchanged code
// is neither re-read nor stored twice.
//
// Store layout (<workspace>/snapshots, Options::store_dir):
//   objects/ab/<sha256>     file contents, read-only (0444), mtime pinned to
//   objects/ab/<sha256>.x   1970-01-01 00:00:01; ".x": the executable (0555) twin
//                           (each fan-out directory is made when first needed)
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
// In-place writes through hard links: materialize() hard-links objects into
// a run's directory, so a run that opened a snapshot file for writing in place
// (as root, or after chmod) would change the stored object. Objects are
// therefore read-only and carry a fixed mtime; any write moves the mtime (and
// a chmod moves the mode), so before an object is reused (take) or linked
// again (materialize) its size, mode and mtime are checked. take() replaces a
// modified object from the source; materialize() refuses to use it. Writes
// that keep size, mode and mtime (a tool that restores the timestamp to 1 s
// past the epoch) are not caught; the content hash is not re-checked on every
// use, which would make warm snapshots read everything.
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
// Included: regular files (content and the owner's executable bit),
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

enum class MaterializeMode { hardlink, copy };

// Recreates snapshot `snapshot_id` in target_dir, which must not exist or be
// an empty directory (its parent must exist). Directories are created 0755
// and symlinks with their stored target. Files: `hardlink` links the stored
// objects (fast; the files are read-only, 0444/0555, and show an mtime of
// 1970-01-01, as in a Nix store), falling back to a copy for a file the
// filesystem will not link (another filesystem, too many links); `copy`
// writes independent, writable files (0644/0755). Nothing is created outside
// target_dir whatever the manifest holds.
void materialize(const std::filesystem::path& store_dir, const std::string& snapshot_id,
                 const std::filesystem::path& target_dir, MaterializeMode mode);

// The manifest of a stored snapshot (for `amlrun show` and tests). Throws
// SnapshotError when the id is malformed or unknown, or the manifest does not
// match its id.
Manifest read_manifest(const std::filesystem::path& store_dir, const std::string& snapshot_id);

}  // namespace amlrun::snapshot
