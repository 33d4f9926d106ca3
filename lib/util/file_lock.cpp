#include "lib/util/file_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cerrno>

#include "lib/util/error.hpp"

namespace amlrun::util {

static util::UniqueFd open_lock_file(const std::filesystem::path& path, int flags) {
  util::UniqueFd fd(::open(path.c_str(), flags | O_CLOEXEC, 0644));
  if (!fd) util::throw_errno(fmt::format("cannot open {}", path.string()));
  return fd;
}

FileLock FileLock::acquire(const std::filesystem::path& path) {
  auto fd = open_lock_file(path, O_RDWR | O_CREAT);
  while (::flock(fd.get(), LOCK_EX) != 0) {
    if (errno != EINTR) util::throw_errno(fmt::format("cannot lock {}", path.string()));
  }
  return FileLock(std::move(fd));
}

std::optional<FileLock> FileLock::try_acquire(const std::filesystem::path& path) {
  auto fd = open_lock_file(path, O_RDWR | O_CREAT);
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) return std::nullopt;
    util::throw_errno(fmt::format("cannot lock {}", path.string()));
  }
  return FileLock(std::move(fd));
}

bool is_locked(const std::filesystem::path& path) {
  util::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return false;
  if (::flock(fd.get(), LOCK_SH | LOCK_NB) != 0) return errno == EWOULDBLOCK;
  ::flock(fd.get(), LOCK_UN);
  return false;
}

}  // namespace amlrun::util
