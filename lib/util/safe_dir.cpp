#include "lib/util/safe_dir.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <algorithm>
#include <cerrno>

namespace amlrun::util {

namespace {

constexpr int k_dir_flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;

// The components of a relative path; ".." or an absolute path is a bug in
// the caller (user input is checked with safe_join before it gets here).
template <typename Visit>
void for_each_component(std::string_view relative, Visit visit) {
  if (!relative.empty() && relative.front() == '/') {
    throw InfraError(fmt::format("internal error: '{}' is not a relative path", relative));
  }
  std::size_t start = 0;
  while (start <= relative.size()) {
    std::size_t slash = relative.find('/', start);
    std::string_view part = relative.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (part == "..") {
      throw InfraError(fmt::format("internal error: '{}' leaves its directory", relative));
    }
    if (!part.empty() && part != ".") visit(std::string(part));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
}

bool is_symlink_at(int dir_fd, const std::string& name) {
  struct stat st {};
  return ::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
}

}  // namespace

std::pair<std::string, std::string> split_parent(std::string_view relative) {
  std::size_t slash = relative.rfind('/');
  if (slash == std::string_view::npos) return {"", std::string(relative)};
  return {std::string(relative.substr(0, slash)), std::string(relative.substr(slash + 1))};
}

SafeDir SafeDir::open(const fs::path& path, ExitCode code) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) throw_errno(fmt::format("cannot open directory {}", path.string()));
  return SafeDir(std::move(fd), path, code);
}

SafeDir SafeDir::adopt(UniqueFd fd, fs::path path, ExitCode code) {
  return SafeDir(std::move(fd), std::move(path), code);
}

SafeDir SafeDir::create(const fs::path& path, ExitCode code, mode_t mode) {
  std::error_code error;
  fs::create_directories(path, error);
  if (error) {
    throw InfraError(fmt::format("cannot create {}: {}", path.string(), error.message()));
  }
  if (mode != 0755) ::chmod(path.c_str(), mode);
  return open(path, code);
}

void SafeDir::refuse(const fs::path& where, int error_number) const {
  bool link = error_number == ELOOP;
  throw PathInTheWay(
      m_code,
      fmt::format("{} is {}; amlrun does not {} it (move it away and try again)", where.string(),
                  link ? "a symbolic link" : "not a directory", link ? "follow" : "write through"),
      where, link);
}

std::optional<SafeDir> SafeDir::walk(std::string_view relative, bool create, mode_t mode,
                                     bool allow_missing) const {
  UniqueFd current(::dup(m_fd.get()));
  if (!current) throw_errno("dup");
  fs::path walked = m_path;
  for_each_component(relative, [&](const std::string& name) {
    if (!current) return;  // an earlier component was missing
    walked /= name;
    UniqueFd next(::openat(current.get(), name.c_str(), k_dir_flags));
    if (!next && errno == ENOENT && create) {
      if (::mkdirat(current.get(), name.c_str(), mode) != 0 && errno != EEXIST) {
        throw_errno(fmt::format("cannot create {}", walked.string()));
      }
      next = UniqueFd(::openat(current.get(), name.c_str(), k_dir_flags));
    }
    if (!next) {
      int error_number = errno;
      // O_NOFOLLOW with O_DIRECTORY reports a link as ENOTDIR on some
      // kernels and ELOOP on others: look.
      if (error_number == ELOOP || error_number == ENOTDIR) {
        refuse(walked, is_symlink_at(current.get(), name) ? ELOOP : ENOTDIR);
      }
      if (error_number == ENOENT && allow_missing) {
        current = UniqueFd();
        return;
      }
      throw InfraError(
          errno_message(fmt::format("cannot open directory {}", walked.string()), error_number));
    }
    current = std::move(next);
  });
  if (!current) return std::nullopt;
  return SafeDir(std::move(current), walked, m_code);
}

SafeDir SafeDir::dir(std::string_view relative) const {
  return *walk(relative, /*create=*/false, 0, /*allow_missing=*/false);
}

SafeDir SafeDir::make_dirs(std::string_view relative, mode_t mode) const {
  return *walk(relative, /*create=*/true, mode, /*allow_missing=*/false);
}

std::optional<SafeDir> SafeDir::find_dir(std::string_view relative) const {
  return walk(relative, /*create=*/false, 0, /*allow_missing=*/true);
}

UniqueFd SafeDir::try_open_file(std::string_view relative, int flags, mode_t mode) const {
  auto [parent, name] = split_parent(relative);
  std::optional<SafeDir> dir = parent.empty() ? std::nullopt : find_dir(parent);
  if (!parent.empty() && !dir) {
    errno = ENOENT;
    return UniqueFd();
  }
  int dir_fd = dir ? dir->fd() : m_fd.get();
  UniqueFd fd(::openat(dir_fd, name.c_str(), flags | O_NOFOLLOW | O_CLOEXEC, mode));
  if (!fd && errno == ELOOP) refuse((dir ? dir->path() : m_path) / name, ELOOP);
  return fd;
}

UniqueFd SafeDir::open_file(std::string_view relative, int flags, mode_t mode) const {
  UniqueFd fd = try_open_file(relative, flags, mode);
  if (!fd) throw_errno(fmt::format("cannot open {}", (m_path / relative).string()));
  return fd;
}

void SafeDir::write_file(std::string_view relative, std::string_view data, mode_t mode,
                         bool durable) const {
  auto [parent, name] = split_parent(relative);
  SafeDir dir = this->dir(parent);
  AtomicFile file(dir.fd(), name, dir.path() / name, mode);
  file.write(data);
  file.commit(durable);
}

std::vector<SafeDir::Entry> SafeDir::list() const {
  int copy = ::openat(m_fd.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (copy < 0) throw_errno(fmt::format("cannot open directory {}", m_path.string()));
  DIR* dir = ::fdopendir(copy);
  if (!dir) {
    ::close(copy);
    throw_errno(fmt::format("cannot read directory {}", m_path.string()));
  }
  std::vector<Entry> entries;
  errno = 0;
  while (const dirent* entry = ::readdir(dir)) {
    std::string name = entry->d_name;
    if (name == "." || name == "..") continue;
    mode_t type = 0;
    switch (entry->d_type) {
      case DT_DIR:
        type = S_IFDIR;
        break;
      case DT_REG:
        type = S_IFREG;
        break;
      case DT_LNK:
        type = S_IFLNK;
        break;
      default:
        type = type_of(name);
        break;  // DT_UNKNOWN on some filesystems
    }
    entries.push_back({std::move(name), type});
  }
  int error_number = errno;
  ::closedir(dir);
  if (error_number != 0) {
    throw InfraError(
        errno_message(fmt::format("cannot read directory {}", m_path.string()), error_number));
  }
  return entries;
}

mode_t SafeDir::type_of(const std::string& name) const {
  struct stat st {};
  if (::fstatat(m_fd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return 0;
  return st.st_mode & S_IFMT;
}

bool SafeDir::move_no_replace(const std::string& name, const SafeDir& to,
                              const std::string& to_name) const {
  if (::renameat2(m_fd.get(), name.c_str(), to.fd(), to_name.c_str(), RENAME_NOREPLACE) == 0) {
    return true;
  }
  if (errno == EINVAL) {
    // A filesystem without RENAME_NOREPLACE (some network filesystems):
    // look first. Only amlrun writes below `to`, so the gap is harmless.
    if (to.type_of(to_name) != 0) {
      errno = EEXIST;
      return false;
    }
    if (::renameat(m_fd.get(), name.c_str(), to.fd(), to_name.c_str()) == 0) return true;
  }
  if (errno == EEXIST || errno == ENOTEMPTY) {
    errno = EEXIST;
    return false;
  }
  throw_errno(fmt::format("cannot move {} to {}", (m_path / name).string(),
                          (to.path() / to_name).string()));
}

namespace {

void copy_file_contents(int from, int to, const fs::path& shown) {
  for (;;) {
    ssize_t n = ::copy_file_range(from, nullptr, to, nullptr, 1 << 30, 0);
    if (n == 0) return;
    if (n > 0) continue;
    if (errno == EINTR) continue;
    if (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP) break;
    throw_errno(fmt::format("cannot copy {}", shown.string()));
  }
  // A kernel or filesystem pair without copy_file_range: read and write.
  char buffer[1 << 16];
  for (;;) {
    ssize_t n = ::read(from, buffer, sizeof buffer);
    if (n == 0) return;
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno(fmt::format("cannot read {}", shown.string()));
    }
    write_all(to, std::string_view(buffer, static_cast<std::size_t>(n)),
              fmt::format("cannot write {}", shown.string()));
  }
}

void copy_tree_into(const SafeDir& from, const SafeDir& to, const std::string& prefix,
                    TreeCopyStats& stats) {
  for (const auto& entry : from.list()) {
    std::string relative = prefix.empty() ? entry.name : prefix + "/" + entry.name;
    if (S_ISDIR(entry.type)) {
      copy_tree_into(from.dir(entry.name), to.make_dirs(entry.name), relative, stats);
    } else if (S_ISREG(entry.type)) {
      UniqueFd source = from.open_file(entry.name, O_RDONLY);
      struct stat st {};
      ::fstat(source.get(), &st);
      UniqueFd target = to.open_file(entry.name, O_WRONLY | O_CREAT | O_EXCL, st.st_mode & 0777);
      copy_file_contents(source.get(), target.get(), from.path() / entry.name);
      ++stats.files;
      stats.bytes += static_cast<std::uint64_t>(st.st_size);
    } else if (S_ISLNK(entry.type)) {
      std::string target(4096, '\0');
      ssize_t n = ::readlinkat(from.fd(), entry.name.c_str(), target.data(), target.size());
      if (n < 0)
        throw_errno(fmt::format("cannot read link {}", (from.path() / entry.name).string()));
      target.resize(static_cast<std::size_t>(n));
      if (::symlinkat(target.c_str(), to.fd(), entry.name.c_str()) != 0) {
        throw_errno(fmt::format("cannot create link {}", (to.path() / entry.name).string()));
      }
      ++stats.links;
    } else {
      stats.skipped.push_back(relative);
    }
  }
}

void list_files_into(const SafeDir& dir, const std::string& prefix,
                     std::vector<std::pair<std::string, std::uint64_t>>& out) {
  for (const auto& entry : dir.list()) {
    std::string relative = prefix.empty() ? entry.name : prefix + "/" + entry.name;
    if (S_ISDIR(entry.type)) {
      list_files_into(dir.dir(entry.name), relative, out);
    } else if (S_ISREG(entry.type)) {
      struct stat st {};
      if (::fstatat(dir.fd(), entry.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
        out.emplace_back(relative, static_cast<std::uint64_t>(st.st_size));
      }
    }
  }
}

}  // namespace

TreeCopyStats copy_tree(const SafeDir& from, const SafeDir& to) {
  TreeCopyStats stats;
  copy_tree_into(from, to, "", stats);
  return stats;
}

std::vector<std::pair<std::string, std::uint64_t>> list_files(const SafeDir& dir) {
  std::vector<std::pair<std::string, std::uint64_t>> out;
  list_files_into(dir, "", out);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace amlrun::util
