#include "lib/util/fs.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <fmt/format.h>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <utility>

#include "lib/util/error.hpp"
#include "lib/util/random.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::util {

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) {
    if (m_fd >= 0) {
      ::close(m_fd);
    }
    m_fd = other.release();
  }
  return *this;
}

UniqueFd::~UniqueFd() {
  if (m_fd >= 0) {
    ::close(m_fd);
  }
}

int UniqueFd::release() {
  int fd = m_fd;
  m_fd = -1;
  return fd;
}

fs::path safe_join(const fs::path& root, std::string_view relative, std::string_view what) {
  if (relative.find('\0') != std::string_view::npos) {
    throw InputError(fmt::format("{}: path contains a NUL byte", what));
  }
  if (relative.empty()) {
    throw InputError(fmt::format("{}: path is empty", what));
  }
  fs::path rel(relative);
  if (rel.is_absolute()) {
    throw InputError(fmt::format("{}: '{}' is an absolute path; give a path relative to {}", what,
                                 relative, root.string()));
  }
  fs::path normal = rel.lexically_normal();
  if (!normal.empty() && *normal.begin() == "..") {
    throw InputError(
        fmt::format("{}: '{}' leaves {}; give a path inside it", what, relative, root.string()));
  }
  if (normal == ".") {
    return root;
  }
  return root / normal;
}

bool is_within(const fs::path& root, const fs::path& path) {
  fs::path r = root.lexically_normal();
  fs::path p = path.lexically_normal();
  auto ri = r.begin();
  auto pi = p.begin();
  for (; ri != r.end(); ++ri, ++pi) {
    if (ri->empty()) {  // trailing slash of a directory path
      continue;
    }
    if (pi == p.end() || *ri != *pi) {
      return false;
    }
  }
  return true;
}

static std::string describe_file_type(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

void check_directory_path(const fs::path& path, std::string_view what) {
  fs::path absolute = fs::absolute(path).lexically_normal();
  if (absolute.filename().empty()) absolute = absolute.parent_path();
  for (fs::path current = absolute;; current = current.parent_path()) {
    struct stat info {};
    if (::stat(current.c_str(), &info) == 0) {
      if (S_ISDIR(info.st_mode)) return;
      std::string kind = S_ISREG(info.st_mode) ? "a file" : describe_file_type(info.st_mode);
      if (current == absolute) {
        throw InputError(fmt::format("{} {} is {}, not a directory; give a directory", what,
                                     path.string(), kind));
      }
      throw InputError(fmt::format("{} {} cannot be created: {} is {}, not a directory", what,
                                   path.string(), current.string(), kind));
    }
    if (!current.has_parent_path() || current.parent_path() == current) return;
  }
}

static std::string read_fd_fully(int fd, const fs::path& path, std::uint64_t reserve) {
  std::string data;
  data.reserve(reserve);
  char buffer[65536];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw InputError(errno_message(fmt::format("cannot read {}", path.string()), errno));
    }
    if (n == 0) break;
    data.append(buffer, static_cast<size_t>(n));
  }
  return data;
}

std::string read_user_file(const fs::path& path, std::uint64_t max_bytes) {
  // O_NONBLOCK: opening a FIFO for reading must not wait for a writer.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (!fd) {
    throw InputError(errno_message(fmt::format("cannot open {}", path.string()), errno));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    throw InputError(errno_message(fmt::format("cannot stat {}", path.string()), errno));
  }
  if (!S_ISREG(st.st_mode)) {
    throw InputError(fmt::format("{} is {}; give a regular file", path.string(),
                                 describe_file_type(st.st_mode)));
  }
  if (static_cast<std::uint64_t>(st.st_size) > max_bytes) {
    throw InputError(fmt::format("{} is {}, more than the {} this file may have", path.string(),
                                 format_bytes(static_cast<std::uint64_t>(st.st_size)),
                                 format_bytes(max_bytes)));
  }
  // Back to blocking reads for a regular file.
  ::fcntl(fd.get(), F_SETFL, 0);
  std::string data = read_fd_fully(fd.get(), path, static_cast<std::uint64_t>(st.st_size));
  if (data.size() > max_bytes) {  // the file grew while we read it
    throw InputError(fmt::format("{} grew past the limit of {} bytes while being read",
                                 path.string(), max_bytes));
  }
  return data;
}

std::string read_fd(int fd, const fs::path& path) {
  return read_fd_fully(fd, path, 4096);
}

std::string read_file(const fs::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    throw_errno(fmt::format("cannot open {}", path.string()));
  }
  return read_fd_fully(fd.get(), path, 4096);
}

void write_all(int fd, std::string_view data, const std::string& what) {
  const char* p = data.data();
  size_t left = data.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno(what);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
}

void fsync_directory(const fs::path& directory) {
  UniqueFd fd(::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) {
    throw_errno(fmt::format("cannot open directory {}", directory.string()));
  }
  if (::fsync(fd.get()) != 0) {
    throw_errno(fmt::format("cannot fsync directory {}", directory.string()));
  }
}

namespace {

std::string unique_suffix() {
  return fmt::format("{}.{}", ::getpid(), random_hex(4));
}

// linkat of an O_TMPFILE descriptor to dir_fd/name, through /proc (linkat's
// AT_EMPTY_PATH would need CAP_DAC_READ_SEARCH); errno is linkat's.
int link_unnamed(int fd, int dir_fd, const std::string& name) {
  char proc_path[32];
  (void)std::snprintf(proc_path, sizeof proc_path, "/proc/self/fd/%d", fd);
  return ::linkat(AT_FDCWD, proc_path, dir_fd, name.c_str(), AT_SYMLINK_FOLLOW);
}

}  // namespace

AtomicFile::AtomicFile(const fs::path& path, unsigned mode)
    : AtomicFile(AT_FDCWD, path.string(), path, mode) {}

AtomicFile::AtomicFile(int dir_fd, std::string name, fs::path shown, unsigned mode)
    : m_dir_fd(dir_fd), m_name(std::move(name)), m_shown(std::move(shown)) {
  // Unique per writer, so concurrent writers never share a temp file. Beside
  // a bare name it is hidden; a path keeps its directory.
  fs::path target(m_name);
  std::string base = target.filename().string().substr(0, 200);
  m_temp_name = (target.parent_path() / fmt::format(".{}.tmp.{}", base, unique_suffix())).string();
  m_temp_dir_fd = dir_fd;
  m_temp_shown = m_shown.parent_path() / fs::path(m_temp_name).filename();
  m_fd = UniqueFd(::openat(dir_fd, m_temp_name.c_str(),
                           O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
  if (!m_fd) {
    m_temp_name.clear();  // nothing to remove
    throw_errno(fmt::format("cannot create {}", m_temp_shown.string()));
  }
}

std::optional<AtomicFile> AtomicFile::try_unnamed(int dir_fd, const fs::path& shown_dir,
                                                  unsigned mode) {
  AtomicFile file;
  file.m_fd = UniqueFd(::openat(dir_fd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, mode));
  file.m_temp_dir_fd = dir_fd;
  file.m_temp_shown = fmt::format("an unnamed temp file in {}", shown_dir.string());
  if (!file.m_fd) {
    if (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL) return std::nullopt;
    throw_errno(fmt::format("cannot create a temp file in {}", shown_dir.string()));
  }
  return file;
}

bool AtomicFile::can_name_unnamed() {
  return ::access("/proc/self/fd", X_OK) == 0;
}

AtomicFile AtomicFile::named_in(int dir_fd, const fs::path& shown_dir, unsigned mode) {
  AtomicFile file;
  file.m_temp_dir_fd = dir_fd;
  // Many per process (a store writes one per file): a counter keeps them
  // apart, the pid and random part apart from other processes.
  static std::atomic<std::uint64_t> counter{0};
  file.m_temp_name = fmt::format("{}-{}-{}", ::getpid(), random_hex(4), counter.fetch_add(1));
  file.m_temp_shown = shown_dir / file.m_temp_name;
  file.m_fd = UniqueFd(::openat(dir_fd, file.m_temp_name.c_str(),
                                O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
  if (!file.m_fd) {
    file.m_temp_name.clear();
    throw_errno(fmt::format("cannot create {}", file.m_temp_shown.string()));
  }
  return file;
}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : m_temp_dir_fd(other.m_temp_dir_fd),
      m_temp_name(std::exchange(other.m_temp_name, {})),
      m_temp_shown(std::move(other.m_temp_shown)),
      m_dir_fd(other.m_dir_fd),
      m_name(std::move(other.m_name)),
      m_shown(std::move(other.m_shown)),
      m_fd(std::move(other.m_fd)),
      m_committed(std::exchange(other.m_committed, true)) {}

AtomicFile::~AtomicFile() {
  if (!m_committed && !m_temp_name.empty()) {
    ::unlinkat(m_temp_dir_fd, m_temp_name.c_str(), 0);
  }
}

void AtomicFile::write(std::string_view data) {
  write_all(m_fd.get(), data, fmt::format("cannot write {}", m_temp_shown.string()));
}

void AtomicFile::commit(bool durable) {
  if (durable && ::fsync(m_fd.get()) != 0) {
    throw_errno(fmt::format("cannot fsync {}", m_temp_shown.string()));
  }
  if (::close(m_fd.release()) != 0) {
    throw_errno(fmt::format("cannot close {}", m_temp_shown.string()));
  }
  if (::renameat(m_temp_dir_fd, m_temp_name.c_str(), m_dir_fd, m_name.c_str()) != 0) {
    throw_errno(fmt::format("cannot rename {} to {}", m_temp_shown.string(), m_shown.string()));
  }
  m_committed = true;
  if (!durable) return;
  if (m_dir_fd == AT_FDCWD) {
    fs::path path(m_name);
    fsync_directory(path.has_parent_path() ? path.parent_path() : fs::path("."));
  } else if (::fsync(m_dir_fd) != 0) {
    throw_errno(fmt::format("cannot fsync directory {}", m_shown.parent_path().string()));
  }
}

bool AtomicFile::commit_as(int dir_fd, const std::string& name, const fs::path& shown,
                           bool replace) {
  if (m_temp_name.empty()) {
    if (link_unnamed(m_fd.get(), dir_fd, name) == 0) {
      m_committed = true;
      return true;
    }
    if (errno != EEXIST || !replace) {
      if (errno == EEXIST || errno == ENOENT) return false;
      throw_errno(fmt::format("cannot store {}", shown.string()));
    }
    // A rename replaces, and needs a name to rename from: one beside the
    // target, on the same filesystem.
    std::string temp = fmt::format("{}.tmp.{}", name, unique_suffix());
    if (link_unnamed(m_fd.get(), dir_fd, temp) != 0) {
      throw_errno(fmt::format("cannot create a temp file beside {}", shown.string()));
    }
    if (::renameat(dir_fd, temp.c_str(), dir_fd, name.c_str()) != 0) {
      int error = errno;
      ::unlinkat(dir_fd, temp.c_str(), 0);
      errno = error;
      throw_errno(fmt::format("cannot store {}", shown.string()));
    }
    m_committed = true;
    return true;
  }
  int result = replace ? ::renameat(m_temp_dir_fd, m_temp_name.c_str(), dir_fd, name.c_str())
                       : ::renameat2(m_temp_dir_fd, m_temp_name.c_str(), dir_fd, name.c_str(),
                                     RENAME_NOREPLACE);
  if (result != 0 && !replace && errno == EINVAL) {
    // A filesystem without RENAME_NOREPLACE: a hard link never replaces.
    result = ::linkat(m_temp_dir_fd, m_temp_name.c_str(), dir_fd, name.c_str(), 0);
    if (result == 0) ::unlinkat(m_temp_dir_fd, m_temp_name.c_str(), 0);
  }
  if (result == 0) {
    m_temp_name.clear();
    m_committed = true;
    return true;
  }
  if (!replace && (errno == EEXIST || errno == ENOENT)) return false;
  if (replace && errno == ENOENT) return false;
  throw_errno(fmt::format("cannot store {}", shown.string()));
}

void write_file_atomic(const fs::path& path, std::string_view data, unsigned mode) {
  AtomicFile file(path, mode);
  file.write(data);
  file.commit(/*durable=*/true);
}

void write_file_replace(const fs::path& path, std::string_view data, unsigned mode) {
  AtomicFile file(path, mode);
  file.write(data);
  file.commit(/*durable=*/false);
}

std::uint64_t available_bytes(const fs::path& path) {
  struct statvfs info {};
  if (::statvfs(path.c_str(), &info) != 0) return UINT64_MAX;
  return static_cast<std::uint64_t>(info.f_bavail) * info.f_frsize;
}

bool older_than(const fs::path& path, int seconds) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return false;
  auto age =
      std::chrono::system_clock::now() - std::chrono::system_clock::from_time_t(st.st_mtim.tv_sec);
  return age > std::chrono::seconds(seconds);
}

}  // namespace amlrun::util
