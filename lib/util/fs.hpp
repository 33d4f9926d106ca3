#pragma once
// The one place for path joins that must stay inside a root, reading user
// files defensively, and writing files atomically.
#include <cstdint>
#include <filesystem>
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

// A temp file that becomes `path` on commit(); removed if never committed.
class AtomicFile {
 public:
  explicit AtomicFile(fs::path path, unsigned mode = 0644);
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();
  void write(std::string_view data);
  int fd() const { return m_fd.get(); }
  const fs::path& temp_path() const { return m_temp; }
  // fsync, rename over the target, fsync the directory (durable = true);
  // with durable = false only the rename (caches).
  void commit(bool durable = true);

 private:
  fs::path m_path;
  fs::path m_temp;
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
