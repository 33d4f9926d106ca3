#include "lib/util/fs.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cerrno>
#include <chrono>

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

AtomicFile::AtomicFile(fs::path path, unsigned mode) : m_path(std::move(path)) {
  // The temp name is unique per writer, so concurrent writers never share one.
  m_temp = m_path;
  m_temp += fmt::format(".tmp.{}.{}", ::getpid(), random_hex(4));
  m_fd = UniqueFd(::open(m_temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (!m_fd) {
    throw_errno(fmt::format("cannot create {}", m_temp.string()));
  }
}

AtomicFile::~AtomicFile() {
  if (!m_committed) {
    ::unlink(m_temp.c_str());
  }
}

void AtomicFile::write(std::string_view data) {
  write_all(m_fd.get(), data, fmt::format("cannot write {}", m_temp.string()));
}

void AtomicFile::commit(bool durable) {
  if (durable && ::fsync(m_fd.get()) != 0) {
    throw_errno(fmt::format("cannot fsync {}", m_temp.string()));
  }
  if (::close(m_fd.release()) != 0) {
    throw_errno(fmt::format("cannot close {}", m_temp.string()));
  }
  if (::rename(m_temp.c_str(), m_path.c_str()) != 0) {
    throw_errno(fmt::format("cannot rename {} to {}", m_temp.string(), m_path.string()));
  }
  m_committed = true;
  if (durable) {
    fsync_directory(m_path.has_parent_path() ? m_path.parent_path() : fs::path("."));
  }
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
