#pragma once
// The one place for path joins that must stay inside a root, reading user
// files defensively, and writing files atomically.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace amlrun::util {

namespace fs = std::filesystem;

// Owns a file descriptor; closes it on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : m_fd(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  UniqueFd(UniqueFd&& other) noexcept : m_fd(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  ~UniqueFd();
  int get() const { return m_fd; }
  int release();
  explicit operator bool() const { return m_fd >= 0; }

 private:
  int m_fd = -1;
};

// Joins a relative path (as a user wrote it) onto root. Throws InputError when
// the result would leave root: absolute paths, ".." escapes, NUL bytes.
// `what` names the value in the message ("output 'model'", "--prefix").
fs::path safe_join(const fs::path& root, std::string_view relative, std::string_view what);

// Throws InputError when `path`, or the nearest of its parents that exists,
// is something other than a directory (a regular file, a FIFO, ...), so that
// a destination that can never be created is a usage error naming the path,
// not a failure halfway. `what` names the value ("the destination").
void check_directory_path(const fs::path& path, std::string_view what);

// True when `path` is root itself or below it (lexically, after normalising).
bool is_within(const fs::path& root, const fs::path& path);

// Reads a whole user-supplied file. Refuses FIFOs, devices, directories and
// files larger than max_bytes with an InputError naming the path; never blocks
// on a FIFO (opened non-blocking, checked with fstat before any read).
std::string read_user_file(const fs::path& path, std::uint64_t max_bytes);

// Reads a whole file the program itself wrote (no size limit, no type check).
std::string read_file(const fs::path& path);
// Reads what is left of an open file; `path` names it in errors.
std::string read_fd(int fd, const fs::path& path);

// Writes data to a temp file beside path, fsyncs it, renames it over path and
// fsyncs the directory, so a crash leaves either the old or the new file.
void write_file_atomic(const fs::path& path, std::string_view data, unsigned mode = 0644);

// Same, without the two fsyncs: for caches that can be rebuilt.
void write_file_replace(const fs::path& path, std::string_view data, unsigned mode = 0644);

void fsync_directory(const fs::path& directory);

// The one temp-file-then-rename writer: a temp file that becomes its target
// on commit, removed if never committed, so nobody sees a half-written file
// under the target's name and a crash leaves the old file or the new one.
// The temp file is named beside its target (".<name>.tmp.<pid>.<random>"),
// or, for a store that names files by their content once written, created
// where the caller says: unnamed (O_TMPFILE: it vanishes with its descriptor
// after a crash) where the filesystem allows it, else named in a directory
// the caller sweeps. Temp files and targets are reached relative to open
// directories without following a link in their last component.
class AtomicFile {
 public:
  // Target `path` (its directory reached by path, as given).
  explicit AtomicFile(const fs::path& path, unsigned mode = 0644);
  // Target `name` in the directory open as dir_fd, which must stay open
  // until commit (a util::SafeDir's); `shown` names the target in messages.
  AtomicFile(int dir_fd, std::string name, fs::path shown, unsigned mode = 0644);

  // For a target named after writing (commit_as): an unnamed temp file in
  // dir_fd, or nullopt when the filesystem has none. Other failures throw.
  // Only where can_name_unnamed(): the name is given through /proc.
  static std::optional<AtomicFile> try_unnamed(int dir_fd, const fs::path& shown_dir,
                                               unsigned mode = 0644);
  // True when this process sees /proc/self/fd (not in a chroot or a
  // container without /proc). Asked once per batch of files, not cached.
  static bool can_name_unnamed();
  // Same, named "<pid>-<random>" in dir_fd (a temp directory on the target's
  // filesystem).
  static AtomicFile named_in(int dir_fd, const fs::path& shown_dir, unsigned mode = 0644);

  AtomicFile(AtomicFile&& other) noexcept;
  AtomicFile& operator=(AtomicFile&&) = delete;
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();

  void write(std::string_view data);
  int fd() const { return m_fd.get(); }
  // The temp file's path for messages ("an unnamed temp file in DIR").
  const fs::path& temp_path() const { return m_temp_shown; }
  bool unnamed() const { return m_temp_name.empty(); }

  // fsync, rename over the target, fsync the directory (durable = true);
  // with durable = false only the rename (caches).
  void commit(bool durable = true);
  // Gives the file the name `name` (may hold slashes) below dir_fd. With
  // replace, renames over whatever is there; without, returns false and
  // leaves the file uncommitted when the name exists (errno EEXIST) or a
  // directory on the way is missing (errno ENOENT). Other failures throw.
  bool commit_as(int dir_fd, const std::string& name, const fs::path& shown, bool replace);

 private:
  AtomicFile() = default;

  int m_temp_dir_fd = -1;   // where the temp name lives (AT_FDCWD for a path)
  std::string m_temp_name;  // empty while unnamed
  fs::path m_temp_shown;
  int m_dir_fd = -1;  // the target known at construction
  std::string m_name;
  fs::path m_shown;
  UniqueFd m_fd;
  bool m_committed = false;
};

// True when path (not followed if a link) was last modified more than
// `seconds` ago; false when it cannot be stat'ed. Leftovers of an
// interrupted write are judged by this age before anything removes them.
bool older_than(const fs::path& path, int seconds);

// Bytes available to this user on the filesystem holding `path`;
// UINT64_MAX when it cannot be asked.
std::uint64_t available_bytes(const fs::path& path);

// Writes all bytes, retrying on EINTR and short writes; throws on error.
void write_all(int fd, std::string_view data, const std::string& what);

}  // namespace amlrun::util
