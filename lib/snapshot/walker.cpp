#include "lib/snapshot/walker.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <fmt/format.h>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>

#include "lib/snapshot/error.hpp"
#include "lib/snapshot/ignore.hpp"
#include "lib/snapshot/mounts.hpp"
#include "lib/snapshot/object_store.hpp"
#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::snapshot::detail {

using util::UniqueFd;

namespace {

constexpr std::uint64_t k_max_ignore_file_bytes = 16 << 20;
// The walk starts helper threads only after this many entries (Walker).
constexpr std::size_t k_parallel_walk_entries = 256;
// A huge directory adds to the walk's totals every this many files, so the
// limits stop it midway.
constexpr std::uint64_t k_count_batch = 1024;

std::string join_path(const std::string& directory, std::string_view name) {
  if (directory.empty()) return std::string(name);
  std::string path = directory;
  path += '/';
  path += name;
  return path;
}

std::string describe_special(mode_t mode) {
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISDIR(mode)) return "a directory";
  return "not a regular file";
}

// The walk runs on several threads (a queue of directories): on a warm
// snapshot it is nearly all the work, one lstat per file plus one fstatat of
// the stored object, and system calls on two cores take half the time.
// Regular files are looked up in the stat cache as they are found; a hit
// whose object is intact gets its sha256 here and will not be read.
class Walker {
 public:
  Walker(const fs::path& source_dir, int root_fd, std::set<DeviceInode> excluded,
         const StatCache& cache, int objects_fd, const Limits& limits, unsigned threads)
      : m_source(source_dir),
        m_root_fd(root_fd),
        m_excluded(std::move(excluded)),
        m_cache(cache),
        m_objects_fd(objects_fd),
        m_limits(limits),
        m_threads(std::max(threads, 1u)) {}

  WalkResult run() {
    struct stat root {};
    if (::fstat(m_root_fd, &root) != 0) util::throw_errno("fstat");
    m_queue.push_back(Pending{"", {root.st_dev, root.st_ino}, std::make_shared<IgnoreChain>()});
    m_sinks.resize(m_threads);
    work(m_sinks[0], /*may_start_helpers=*/true);
    for (auto& helper : m_helpers) helper.join();
    if (m_error) std::rethrow_exception(m_error);

    WalkResult result;
    std::size_t total = 0;
    for (const Sink& sink : m_sinks) total += sink.found.size();
    result.found.reserve(total);
    for (Sink& sink : m_sinks) {
      std::move(sink.found.begin(), sink.found.end(), std::back_inserter(result.found));
      std::move(sink.warnings.begin(), sink.warnings.end(), std::back_inserter(result.warnings));
    }
    std::sort(result.warnings.begin(), result.warnings.end());
    result.stopped = m_stopped;
    return result;
  }

 private:
  struct Pending {
    std::string path;
    DeviceInode identity;
    std::shared_ptr<const IgnoreChain> ignore;
  };
  struct Sink {
    std::vector<Found> found;
    std::vector<std::pair<std::string, std::string>> warnings;
    std::vector<Pending> subdirectories;
  };

  // The calling thread walks alone until the tree proves big enough to be
  // worth more threads (k_parallel_walk_entries): a small tree is walked
  // before a helper thread would even have started.
  void work(Sink& sink, bool may_start_helpers) {
    for (;;) {
      Pending directory;
      {
        std::unique_lock lock(m_mutex);
        m_wake.wait(lock, [&] { return m_failed || m_stopped || !m_queue.empty() || m_busy == 0; });
        if (m_failed || m_stopped || m_queue.empty()) {
          m_wake.notify_all();  // all done (or failed): release the others
          return;
        }
        directory = std::move(m_queue.back());
        m_queue.pop_back();
        ++m_busy;
      }
      try {
        walk_directory(directory, sink);
      } catch (...) {
        std::lock_guard lock(m_mutex);
        if (!m_error) m_error = std::current_exception();
        m_failed = true;
      }
      bool start_helpers = false;
      {
        std::lock_guard lock(m_mutex);
        --m_busy;
        for (auto& subdirectory : sink.subdirectories) m_queue.push_back(std::move(subdirectory));
        sink.subdirectories.clear();
        start_helpers = may_start_helpers && m_helpers.empty() && !m_queue.empty() &&
                        sink.found.size() >= k_parallel_walk_entries;
        m_wake.notify_all();
      }
      if (start_helpers) {
        try {
          for (unsigned i = 1; i < m_threads; ++i) {
            m_helpers.emplace_back([this, i] { work(m_sinks[i], /*may_start_helpers=*/false); });
          }
        } catch (const std::system_error&) {
          // No more threads to be had: walk with those already running.
        }
        may_start_helpers = false;
      }
    }
  }

  [[noreturn]] void unreadable_directory(const std::string& path, int error_number) {
    throw SnapshotError(
        fmt::format("cannot read directory {}: {} — make it readable or add it to .amlignore",
                    source_display(m_source, path), std::strerror(error_number)));
  }

  void walk_directory(const Pending& directory, Sink& sink) {
    // Subdirectories are opened from the root by their path without
    // following a final symlink; the device/inode check then proves it is
    // the directory the walk saw, not something swapped in meanwhile.
    UniqueFd fd(directory.path.empty() ? ::dup(m_root_fd)
                                       : ::openat(m_root_fd, directory.path.c_str(),
                                                  O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd && errno == ENOENT) {
      throw SnapshotError(fmt::format("{} was deleted while the snapshot was taken; submit again",
                                      source_display(m_source, directory.path)));
    }
    if (!fd) unreadable_directory(directory.path, errno);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || DeviceInode{st.st_dev, st.st_ino} != directory.identity) {
      throw SnapshotError(fmt::format("{} changed while the snapshot was taken; submit again",
                                      source_display(m_source, directory.path)));
    }
    DIR* dir = ::fdopendir(fd.get());
    if (dir == nullptr) unreadable_directory(directory.path, errno);
    fd.release();
    std::unique_ptr<DIR, int (*)(DIR*)> closer(dir, ::closedir);
    std::vector<std::string> names;
    errno = 0;
    while (dirent* item = ::readdir(dir)) {
      std::string_view name = item->d_name;
      if (name != "." && name != "..") names.emplace_back(name);
    }
    if (errno != 0) unreadable_directory(directory.path, errno);
    int dir_fd = ::dirfd(dir);
    dev_t device = st.st_dev;

    std::shared_ptr<const IgnoreChain> ignore = directory.ignore;
    for (const char* ignore_name : {".amlignore", ".gitignore"}) {
      if (std::find(names.begin(), names.end(), ignore_name) != names.end()) {
        if (auto text = read_ignore_file(dir_fd, join_path(directory.path, ignore_name), sink)) {
          ignore = std::make_shared<IgnoreChain>(ignore, IgnoreFile(directory.path, *text));
        }
        break;  // .amlignore replaces .gitignore in its directory
      }
    }

    Totals counted;  // not yet added to m_counted
    for (const std::string& name : names) {
      if (counted.files >= k_count_batch && !count(counted)) return;
      if (name == ".git") continue;  // never part of a snapshot, as in git
      std::string path = join_path(directory.path, name);
      struct stat entry {};
      if (::fstatat(dir_fd, name.c_str(), &entry, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) continue;  // deleted since readdir: not part of it
        unreadable_directory(directory.path, errno);
      }
      if (m_excluded.contains(DeviceInode{entry.st_dev, entry.st_ino})) continue;
      bool is_dir = S_ISDIR(entry.st_mode);
      if (ignore->is_ignored(path, is_dir)) continue;
      Found found;
      found.path = path;
      found.stat = FileStat::from(entry);
      if (is_dir && entry.st_dev != device) {
        if (auto type = virtual_filesystem(dir_fd, name, entry.st_dev)) {
          sink.warnings.emplace_back(
              path, fmt::format("skipping {}: it is a {} mount, a view of the kernel's state with "
                                "no files to snapshot (add it to .amlignore to silence this "
                                "warning)",
                                source_display(m_source, path), *type));
          continue;
        }
      }
      if (is_dir) {
        found.type = EntryType::directory;
        sink.subdirectories.push_back(Pending{path, {entry.st_dev, entry.st_ino}, ignore});
      } else if (S_ISREG(entry.st_mode)) {
        found.type = EntryType::file;
        found.sha256 = stored_hash(found);
        counted.files += 1;
        counted.bytes += found.stat.size;
      } else if (S_ISLNK(entry.st_mode)) {
        found.type = EntryType::symlink;
        found.link_target = read_link(dir_fd, name, path, entry);
        counted.files += 1;
      } else {
        sink.warnings.emplace_back(
            path,
            fmt::format("skipping {}: it is {}; only regular files, directories and symlinks are "
                        "snapshotted (add it to .amlignore to silence this warning)",
                        source_display(m_source, path), describe_special(entry.st_mode)));
        continue;
      }
      sink.found.push_back(std::move(found));
    }
    count(counted);
  }

  // Adds a directory's files to the walk's totals and resets them; false
  // (and the walk stops) once a total is past twice its limit.
  bool count(Totals& counted) {
    std::uint64_t files = m_counted_files.fetch_add(counted.files) + counted.files;
    std::uint64_t bytes = m_counted_bytes.fetch_add(counted.bytes) + counted.bytes;
    counted = {};
    auto past_twice = [](std::uint64_t total, std::uint64_t limit) {
      return total > limit && total - limit > limit;
    };
    if (!past_twice(files, m_limits.max_files) && !past_twice(bytes, m_limits.max_bytes)) {
      return true;
    }
    std::lock_guard lock(m_mutex);
    m_stopped = true;
    m_wake.notify_all();
    return false;
  }

  // The type of the filesystem mounted at dir_fd/name when it is one of the
  // kernel's virtual trees (proc, sysfs, devtmpfs, cgroup, ...), which hold
  // no files worth a snapshot and change while they are read.
  std::optional<std::string> virtual_filesystem(int dir_fd, const std::string& name, dev_t device) {
    std::string type = m_mounts.type_of(device);
    if (type.empty()) {
      UniqueFd fd(::openat(dir_fd, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      struct statfs info {};
      if (!fd || ::fstatfs(fd.get(), &info) != 0) return std::nullopt;
      type = filesystem_name_of_magic(static_cast<std::uint64_t>(info.f_type));
    }
    if (is_virtual_filesystem(type)) return type;
    return std::nullopt;
  }

  // The sha256 of an unchanged file whose stored object is intact, else "".
  std::string stored_hash(const Found& found) const {
    auto sha256 = m_cache.find_fresh(found.path, found.stat);
    if (!sha256) return {};
    FileKind kind = kind_of_mode(found.stat.mode);
    struct stat object {};
    if (::fstatat(m_objects_fd, object_name(*sha256, kind).c_str(), &object, AT_SYMLINK_NOFOLLOW) !=
            0 ||
        !object_intact(object, found.stat.size, kind)) {
      return {};  // missing, or modified in the store: store it again
    }
    return std::move(*sha256);
  }

  std::string read_link(int dir_fd, const std::string& name, const std::string& path,
                        const struct stat& st) {
    std::string target(static_cast<std::size_t>(st.st_size) + 1, '\0');
    for (;;) {
      ssize_t n = ::readlinkat(dir_fd, name.c_str(), target.data(), target.size());
      if (n < 0) {
        throw SnapshotError(fmt::format("cannot read symlink {}: {}",
                                        source_display(m_source, path), std::strerror(errno)));
      }
      if (static_cast<std::size_t>(n) < target.size()) {
        target.resize(static_cast<std::size_t>(n));
        return target;
      }
      target.resize(target.size() * 2);  // the link was replaced by a longer one
    }
  }

  std::optional<std::string> read_ignore_file(int dir_fd, const std::string& path, Sink& sink) {
    std::string name = fs::path(path).filename().string();
    UniqueFd fd(
        ::openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
    int open_error = errno;
    struct stat st {};
    if (!fd && open_error == ENOENT) return std::nullopt;
    if (!fd && open_error == ELOOP) {
      // Like git, which no longer follows an in-tree symlinked ignore file.
      sink.warnings.emplace_back(
          path, fmt::format("not using {}: it is a symlink", source_display(m_source, path)));
      return std::nullopt;
    }
    if (!fd) {
      throw SnapshotError(fmt::format("cannot read {}: {} — make it readable",
                                      source_display(m_source, path), std::strerror(open_error)));
    }
    if (::fstat(fd.get(), &st) != 0) util::throw_errno(fmt::format("cannot stat {}", path));
    if (!S_ISREG(st.st_mode)) {
      sink.warnings.emplace_back(
          path, fmt::format("not using {}: it is {}, not a regular file",
                            source_display(m_source, path), describe_special(st.st_mode)));
      return std::nullopt;
    }
    if (static_cast<std::uint64_t>(st.st_size) > k_max_ignore_file_bytes) {
      throw SnapshotError(fmt::format("{} is {}, more than the {} an ignore file may have",
                                      source_display(m_source, path),
                                      util::format_bytes(static_cast<std::uint64_t>(st.st_size)),
                                      util::format_bytes(k_max_ignore_file_bytes)));
    }
    ::fcntl(fd.get(), F_SETFL, 0);
    std::string text;
    char buffer[65536];
    for (;;) {
      ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        throw SnapshotError(fmt::format("cannot read {}: {} — make it readable",
                                        source_display(m_source, path), std::strerror(errno)));
      }
      if (n == 0) break;
      text.append(buffer, static_cast<std::size_t>(n));
      if (text.size() > k_max_ignore_file_bytes) break;
    }
    return text;
  }

  fs::path m_source;
  int m_root_fd;
  std::set<DeviceInode> m_excluded;
  const StatCache& m_cache;
  int m_objects_fd;
  const Limits& m_limits;
  unsigned m_threads;
  MountTable m_mounts;
  std::atomic<std::uint64_t> m_counted_files{0};
  std::atomic<std::uint64_t> m_counted_bytes{0};

  std::vector<Sink> m_sinks;           // one per thread
  std::vector<std::thread> m_helpers;  // started by the calling thread, from work()
  std::mutex m_mutex;
  std::condition_variable m_wake;
  std::vector<Pending> m_queue;  // directories not walked yet
  unsigned m_busy = 0;           // threads walking a directory now
  bool m_failed = false;
  bool m_stopped = false;  // past twice a limit (count)
  std::exception_ptr m_error;
};

}  // namespace

std::string source_display(const fs::path& source_dir, const std::string& relative) {
  return display_path(relative.empty() ? source_dir.string() : (source_dir / relative).string());
}

WalkResult walk_source(const fs::path& source_dir, int root_fd, std::set<DeviceInode> excluded,
                       const StatCache& cache, int objects_fd, const Limits& limits,
                       unsigned threads) {
  return Walker(source_dir, root_fd, std::move(excluded), cache, objects_fd, limits, threads).run();
}

}  // namespace amlrun::snapshot::detail
