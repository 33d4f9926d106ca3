#pragma once
// Internal to lib/snapshot: the content-addressed store (layout and
// durability in snapshot.hpp) and what an object's name and mode say about
// the file it holds.
#include <sys/stat.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <string>
#include <string_view>

#include "lib/snapshot/manifest.hpp"
#include "lib/util/fs.hpp"

namespace amlrun::snapshot::detail {

namespace fs = std::filesystem;

// Stored objects carry this mtime; a write to an object moves it.
inline constexpr time_t k_object_mtime = 1;

// The two permission facts a snapshot keeps of a file besides its content.
// An owner-only file (one that group and others may not both read) stays
// owner-only in the store and in every run: a 0600 credentials file must not
// become readable by others because it was snapshotted.
struct FileKind {
  bool executable = false;
  bool owner_only = false;
};

FileKind kind_of_mode(std::uint32_t mode);
FileKind kind_of_entry(const Entry& entry);

// objects/ab/<sha256>[.x][.p]: the same content stored with another kind is
// another object, so no mode is ever changed on an existing object.
std::string object_name(const std::string& sha256, FileKind kind);
// 0444, 0555, 0400, 0500.
unsigned object_mode(FileKind kind);
// A run's copy: the object's mode plus the owner's write bit, so a job may
// rewrite its own working files (they are its own copies).
unsigned working_mode(FileKind kind);
// An object is trusted only while it is exactly as take() left it: size,
// mode and the pinned mtime.
bool object_intact(const struct stat& st, std::uint64_t size, FileKind kind);

util::UniqueFd open_directory(const fs::path& path);
void make_directory(const fs::path& path);

// cache/<sha256 of the source directory's canonical path>.stat
fs::path cache_file_for(const fs::path& store_dir, const fs::path& source_dir);

class Store {
 public:
  explicit Store(const fs::path& store_dir);
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const fs::path& dir() const { return m_dir; }
  int objects_fd() const { return m_objects_fd.get(); }

  // Temp files of crashed writers; anything a day old is not being written.
  // Age is by ctime: a finished temp file already carries the objects'
  // pinned 1970 mtime while it waits for its rename.
  void remove_stale_temp_files() const;

  // True when objects/<name> exists exactly as take() leaves an object.
  bool has_intact_object(const std::string& name, std::uint64_t size, FileKind kind) const;

  // A new temp file for an object. Where the filesystem has O_TMPFILE it
  // is an unnamed inode, which vanishes with its descriptor if it is never
  // linked (nothing to clean up after a crash) and is created without
  // locking any directory; else a named file in tmp/, which
  // remove_stale_temp_files sweeps. Safe to call from many threads.
  util::AtomicFile create_temp() const;

  // Gives a finished temp file (content, mode and mtime set) its final name
  // objects/<name>. When the object exists already, as it does when another
  // take() stored the same content meanwhile, an intact one is kept and a
  // modified one is replaced.
  void publish_object(util::AtomicFile& temp, const std::string& name, std::uint64_t size,
                      FileKind kind) const;

  // Writes manifests/<id> unless it exists (it then has the same content).
  void write_manifest(const std::string& id, std::string_view text) const;

 private:
  util::AtomicFile create_temp_in(int dir_fd, const char* sub) const;
  // tmp/, made and opened on first use.
  int tmp_fd() const;

  fs::path m_dir;
  util::UniqueFd m_objects_fd;
  mutable std::atomic<bool> m_use_tmpfile{false};
  mutable std::mutex m_tmp_mutex;
  mutable util::UniqueFd m_tmp_fd;
};

}  // namespace amlrun::snapshot::detail
