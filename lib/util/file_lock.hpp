#pragma once
// flock(2) locks. A run's supervisor holds runs/<id>/supervisor.lock for its
// whole life; the kernel drops the lock when the process dies, so "is the
// supervisor alive?" is answered without pids that could be reused.
#include <filesystem>
#include <optional>

#include "lib/util/fs.hpp"

namespace amlrun::util {

class FileLock {
 public:
  // Blocks until the exclusive lock is held (creates the file).
  static FileLock acquire(const std::filesystem::path& path);
  // nullopt when another open file description holds it.
  static std::optional<FileLock> try_acquire(const std::filesystem::path& path);
  int fd() const { return m_fd.get(); }
  // Hands the descriptor over (to a child process that keeps the lock).
  int release() { return m_fd.release(); }

 private:
  explicit FileLock(util::UniqueFd fd) : m_fd(std::move(fd)) {}
  util::UniqueFd m_fd;
};

// True when someone holds the lock at `path` (the file may not exist: false).
bool is_locked(const std::filesystem::path& path);

}  // namespace amlrun::util
