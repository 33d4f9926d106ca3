#pragma once
// The one way to reach files below a directory that someone else can change
// (a run's working directory, outputs/ and logs/, a shared run directory, a
// download destination, the snapshot store): every component is opened
// relative to its parent with O_NOFOLLOW, so a symbolic link planted
// anywhere on the way is refused, never followed. Errors name the path as
// the user would write it and the component that is in the way.
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"

namespace amlrun::util {

namespace fs = std::filesystem;

// A component on the way was a symbolic link or not a directory. The code of
// the error (input or infrastructure) is the caller's to choose: a download
// destination is the user's input, a run directory is the machine's.
class PathInTheWay : public Error {
 public:
  PathInTheWay(ExitCode code, const std::string& message, fs::path where, bool is_link)
      : Error(code, message), m_where(std::move(where)), m_is_link(is_link) {}
  const fs::path& where() const { return m_where; }
  bool is_link() const { return m_is_link; }

 private:
  fs::path m_where;
  bool m_is_link;
};

class SafeDir {
 public:
  // Opens `path` as given, following links in it: the caller's own path (a
  // run directory it created, a destination the user named). Everything
  // below it is reached through the methods below. `code` is the exit code
  // of a PathInTheWay thrown by them.
  static SafeDir open(const fs::path& path, ExitCode code = ExitCode::infrastructure);
  // Same, creating `path` (and its parents, normally) when missing.
  static SafeDir create(const fs::path& path, ExitCode code = ExitCode::infrastructure,
                        mode_t mode = 0755);

  // Takes a directory the caller opened itself (with checks of its own);
  // `path` names it in messages.
  static SafeDir adopt(UniqueFd fd, fs::path path, ExitCode code = ExitCode::infrastructure);

  SafeDir(SafeDir&&) noexcept = default;
  SafeDir& operator=(SafeDir&&) noexcept = default;

  // The directory `relative` ("a/b", "" for this one) below this one; every
  // component must be a real directory. Throws PathInTheWay for a link or a
  // non-directory, util::InfraError for other failures (a missing component
  // included).
  SafeDir dir(std::string_view relative) const;
  // Same, creating missing components with `mode`.
  SafeDir make_dirs(std::string_view relative, mode_t mode = 0755) const;
  // Same, but nullopt when a component does not exist.
  std::optional<SafeDir> find_dir(std::string_view relative) const;

  // Opens the file `relative` with `flags` (O_NOFOLLOW and O_CLOEXEC are
  // added; with O_CREAT it is created with `mode`). Its directories must
  // exist (see make_dirs). Throws PathInTheWay when the file or a directory
  // on the way is a link; util::InfraError otherwise.
  UniqueFd open_file(std::string_view relative, int flags, mode_t mode = 0644) const;
  // Same, returning an invalid descriptor (errno set) instead of throwing
  // for a missing file; still throws PathInTheWay for a link.
  UniqueFd try_open_file(std::string_view relative, int flags, mode_t mode = 0644) const;

  // Writes `data` to `relative` atomically (a temp file beside it, renamed
  // over it: a link planted at the name is replaced, never written through).
  void write_file(std::string_view relative, std::string_view data, mode_t mode = 0644,
                  bool durable = false) const;

  struct Entry {
    std::string name;
    mode_t type = 0;  // S_IFDIR, S_IFREG, S_IFLNK, ... (of the entry itself, never followed)
  };
  // The entries of this directory ("." and ".." left out), unsorted.
  std::vector<Entry> list() const;
  // The type of `name` in this directory, not followed; 0 when missing.
  mode_t type_of(const std::string& name) const;

  // Moves `name` from this directory to `to_name` in `to` (the entry itself:
  // a link stays a link) unless `to_name` exists there. Returns false (errno
  // EEXIST) when it does; throws util::InfraError for other failures.
  bool move_no_replace(const std::string& name, const SafeDir& to,
                       const std::string& to_name) const;

  int fd() const { return m_fd.get(); }
  const fs::path& path() const { return m_path; }
  ExitCode code() const { return m_code; }

 private:
  SafeDir(UniqueFd fd, fs::path path, ExitCode code)
      : m_fd(std::move(fd)), m_path(std::move(path)), m_code(code) {}
  // Walks `relative` from this directory; nullopt for a missing component
  // when !create && allow_missing.
  std::optional<SafeDir> walk(std::string_view relative, bool create, mode_t mode,
                              bool allow_missing) const;
  [[noreturn]] void refuse(const fs::path& where, int error_number) const;

  UniqueFd m_fd;
  fs::path m_path;
  ExitCode m_code = ExitCode::infrastructure;
};

// What copy_tree did.
struct TreeCopyStats {
  std::uint64_t files = 0;
  std::uint64_t bytes = 0;
  std::uint64_t links = 0;           // symbolic links copied as links (never followed)
  std::vector<std::string> skipped;  // FIFOs, sockets, devices ("a/b (a FIFO)")
};

// Copies everything below `from` into `to` (which must exist and be empty or
// missing the names copied): regular files by content (copy_file_range),
// directories, and symbolic links as links; nothing is followed on either
// side. Throws util::InfraError when reading or writing fails.
TreeCopyStats copy_tree(const SafeDir& from, const SafeDir& to);

// Relative path → size of every regular file below `dir`, links not
// followed: what a copy is verified against.
std::vector<std::pair<std::string, std::uint64_t>> list_files(const SafeDir& dir);

// "a/b" → {"a", "b"}; "b" → {"", "b"}.
std::pair<std::string, std::string> split_parent(std::string_view relative);

}  // namespace amlrun::util
