#include "lib/snapshot/snapshot.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <fmt/format.h>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <system_error>
#include <thread>
#include <utility>

#include "lib/snapshot/ignore.hpp"
#include "lib/snapshot/mounts.hpp"
#include "lib/snapshot/stat_cache.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/hash.hpp"
#include "lib/util/log.hpp"
#include "lib/util/safe_dir.hpp"
#include "lib/util/strings.hpp"
#include "lib/util/timing.hpp"

namespace amlrun::snapshot {

namespace fs = std::filesystem;
using util::UniqueFd;

namespace {

// Stored objects carry this mtime; any write through a hard link moves it.
constexpr time_t k_object_mtime = 1;
constexpr std::size_t k_copy_buffer_bytes =
    256 * 1024;  // fits in L2: read, hash and write from cache
constexpr std::uint64_t k_max_ignore_file_bytes = 16 << 20;
constexpr std::size_t k_listed_largest = 3;
// Below both of these, files are copied on the calling thread (copy_all).
constexpr std::size_t k_parallel_copy_files = 64;
constexpr std::uint64_t k_parallel_copy_bytes = 4 << 20;
// The walk starts helper threads only after this many entries (Walker).
constexpr std::size_t k_parallel_walk_entries = 256;
// A huge directory adds to the walk's totals every this many files, so the
// limits stop it midway.
constexpr std::uint64_t k_count_batch = 1024;

// ---------------------------------------------------------------------------
// Small helpers

std::string with_commas(std::uint64_t value) {
  std::string digits = std::to_string(value);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

std::string join_path(const std::string& directory, std::string_view name) {
  if (directory.empty()) return std::string(name);
  std::string path = directory;
  path += '/';
  path += name;
  return path;
}

// The absolute spelling of a path in the source tree, for messages.
std::string source_display(const fs::path& source_dir, const std::string& relative) {
  return display_path(relative.empty() ? source_dir.string() : (source_dir / relative).string());
}

// The two permission facts a snapshot keeps of a file besides its content.
// An owner-only file (one that group and others may not both read) stays
// owner-only in the store and in every run: a 0600 credentials file must not
// become readable by others because it was snapshotted.
struct FileKind {
  bool executable = false;
  bool owner_only = false;
};

FileKind kind_of_mode(std::uint32_t mode) {
  return FileKind{(mode & S_IXUSR) != 0, (mode & (S_IRGRP | S_IROTH)) != (S_IRGRP | S_IROTH)};
}

FileKind kind_of_entry(const Entry& entry) {
  return FileKind{entry.executable, entry.owner_only};
}

// objects/ab/<sha256>[.x][.p]: the same content stored with another kind is
// another object, so no mode is ever changed on an existing object.
std::string object_name(const std::string& sha256, FileKind kind) {
  std::string name = sha256.substr(0, 2);
  name += '/';
  name += sha256;
  if (kind.executable) name += ".x";
  if (kind.owner_only) name += ".p";
  return name;
}

unsigned object_mode(FileKind kind) {
  unsigned readable = kind.owner_only ? 0400 : 0444;
  return kind.executable ? readable | ((readable >> 2) & 0111) : readable;
}

// A run's copy: the object's mode plus the owner's write bit, so a job may
// rewrite its own working files (they are its own copies).
unsigned working_mode(FileKind kind) {
  return object_mode(kind) | 0200;
}

// An object is trusted only while it is exactly as take() left it.
bool object_intact(const struct stat& st, std::uint64_t size, FileKind kind) {
  return S_ISREG(st.st_mode) && static_cast<std::uint64_t>(st.st_size) == size &&
         (st.st_mode & 07777) == object_mode(kind) && st.st_mtim.tv_sec == k_object_mtime &&
         st.st_mtim.tv_nsec == 0;
}

UniqueFd open_directory(const fs::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) util::throw_errno(fmt::format("cannot open {}", path.string()));
  return fd;
}

void make_directory(const fs::path& path) {
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
    util::throw_errno(fmt::format("cannot create {}", path.string()));
  }
}

bool is_valid_id(const std::string& id) {
  return id.size() == 64 && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::string describe_special(mode_t mode) {
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISDIR(mode)) return "a directory";
  return "not a regular file";
}

// ---------------------------------------------------------------------------
// The store

class Store {
 public:
  explicit Store(const fs::path& store_dir) : m_dir(store_dir) {
    std::error_code error;
    fs::create_directories(store_dir, error);
    if (error) {
      throw util::InfraError(fmt::format("cannot create the snapshot store {}: {}",
                                         store_dir.string(), error.message()));
    }
    for (const char* sub : {"objects", "manifests", "cache"}) {
      make_directory(store_dir / sub);
    }
    // The fan-out directories (objects/00 .. objects/ff) and tmp/ are made
    // when first needed: a store for a small tree needs few of them, and a
    // directory costs as much to create as a file.
    m_objects_fd = open_directory(store_dir / "objects");
    m_use_tmpfile = util::AtomicFile::can_name_unnamed();
  }
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const fs::path& dir() const { return m_dir; }
  int objects_fd() const { return m_objects_fd.get(); }

  // Temp files of crashed writers; anything a day old is not being written.
  // Age is by ctime: a finished temp file already carries the objects'
  // pinned 1970 mtime while it waits for its rename.
  void remove_stale_temp_files() const {
    UniqueFd fd(::open((m_dir / "tmp").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    DIR* dir = fd ? ::fdopendir(fd.release()) : nullptr;
    if (dir == nullptr) return;
    std::int64_t cutoff = filesystem_clock_ns() - 24ll * 3600 * 1'000'000'000;
    while (dirent* item = ::readdir(dir)) {
      struct stat st {};
      if (item->d_name[0] == '.' ||
          ::fstatat(::dirfd(dir), item->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        continue;
      }
      if (static_cast<std::int64_t>(st.st_ctim.tv_sec) * 1'000'000'000 < cutoff) {
        ::unlinkat(::dirfd(dir), item->d_name, 0);
      }
    }
    ::closedir(dir);
  }

  // True when objects/<name> exists exactly as take() leaves an object.
  bool has_intact_object(const std::string& name, std::uint64_t size, FileKind kind) const {
    struct stat st {};
    return ::fstatat(m_objects_fd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
           object_intact(st, size, kind);
  }

  // A new temp file for an object. Where the filesystem has O_TMPFILE it
  // is an unnamed inode, which vanishes with its descriptor if it is never
  // linked (nothing to clean up after a crash) and is created without
  // locking any directory; else a named file in tmp/, which
  // remove_stale_temp_files sweeps. Safe to call from many threads.
  util::AtomicFile create_temp() const { return create_temp_in(m_objects_fd.get(), "objects"); }

  // Gives a finished temp file (content, mode and mtime set) its final name
  // objects/<name>. When the object exists already, as it does when another
  // take() stored the same content meanwhile, an intact one is kept and a
  // modified one is replaced.
  void publish_object(util::AtomicFile& temp, const std::string& name, std::uint64_t size,
                      FileKind kind) const {
    fs::path shown = m_dir / "objects" / name;
    for (int attempt = 0; attempt < 3; ++attempt) {
      if (temp.commit_as(m_objects_fd.get(), name, shown, /*replace=*/false)) return;
      if (errno == EEXIST) {
        struct stat st {};
        if (::fstatat(m_objects_fd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
          if (errno == ENOENT) continue;  // removed meanwhile: link again
          util::throw_errno(fmt::format("cannot store {}", shown.string()));
        }
        if (object_intact(st, size, kind)) return;  // the temp file goes with `temp`
        if (temp.commit_as(m_objects_fd.get(), name, shown, /*replace=*/true)) return;
        continue;
      }
      // The fan-out directory is missing; another writer may make it too.
      std::string fan_out = name.substr(0, 2);
      if (::mkdirat(m_objects_fd.get(), fan_out.c_str(), 0755) != 0 && errno != EEXIST) {
        util::throw_errno(fmt::format("cannot create {}", (m_dir / "objects" / fan_out).string()));
      }
    }
    throw util::InfraError(fmt::format("cannot store {}: it keeps changing", shown.string()));
  }

  // Writes manifests/<id> unless it exists (it then has the same content).
  void write_manifest(const std::string& id, std::string_view text) const {
    fs::path file = m_dir / "manifests" / id;
    if (::access(file.c_str(), F_OK) == 0) return;
    UniqueFd manifests_fd = open_directory(m_dir / "manifests");
    util::AtomicFile temp = create_temp_in(manifests_fd.get(), "manifests");
    temp.write(text);
    if (::fchmod(temp.fd(), 0444) != 0) {
      util::throw_errno(fmt::format("cannot write {}", file.string()));
    }
    // An existing manifest has the same content: keeping it is as good.
    temp.commit_as(manifests_fd.get(), id, file, /*replace=*/false);
  }

 private:
  util::AtomicFile create_temp_in(int dir_fd, const char* sub) const {
    if (m_use_tmpfile.load(std::memory_order_relaxed)) {
      if (auto temp = util::AtomicFile::try_unnamed(dir_fd, m_dir / sub, 0600)) {
        return std::move(*temp);
      }
      m_use_tmpfile = false;  // this filesystem has no O_TMPFILE: named temps from now on
    }
    return util::AtomicFile::named_in(tmp_fd(), m_dir / "tmp", 0600);
  }

  // tmp/, made and opened on first use.
  int tmp_fd() const {
    std::lock_guard lock(m_tmp_mutex);
    if (!m_tmp_fd) {
      make_directory(m_dir / "tmp");
      m_tmp_fd = open_directory(m_dir / "tmp");
    }
    return m_tmp_fd.get();
  }

  fs::path m_dir;
  UniqueFd m_objects_fd;
  mutable std::atomic<bool> m_use_tmpfile{false};
  mutable std::mutex m_tmp_mutex;
  mutable UniqueFd m_tmp_fd;
};

fs::path cache_file_for(const fs::path& store_dir, const fs::path& source_dir) {
  std::error_code error;
  fs::path canonical = fs::weakly_canonical(source_dir, error);
  if (error) canonical = fs::absolute(source_dir).lexically_normal();
  return store_dir / "cache" / (util::sha256_hex(canonical.string()) + ".stat");
}

// ---------------------------------------------------------------------------
// The walk: what the snapshot will contain, from lstat alone.

struct Found {
  std::string path;
  EntryType type = EntryType::file;
  FileStat stat;
  std::string link_target;
  std::string sha256;
};

struct Totals {
  std::uint64_t files = 0;  // regular files and symlinks
  std::uint64_t bytes = 0;  // of the regular files
};

struct DeviceInode {
  std::uint64_t device;
  std::uint64_t inode;
  auto operator<=>(const DeviceInode&) const = default;
};

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

  struct Result {
    std::vector<Found> found;
    std::vector<std::pair<std::string, std::string>> warnings;  // (path, message), sorted by path
    // The walk gave up past twice a limit: `found` is part of the tree, and
    // enough to say where it is big (`code: /` fails in a second, not after
    // reading the whole machine).
    bool stopped = false;
  };

  Result run() {
    struct stat root {};
    if (::fstat(m_root_fd, &root) != 0) util::throw_errno("fstat");
    m_queue.push_back(Pending{"", {root.st_dev, root.st_ino}, std::make_shared<IgnoreChain>()});
    m_sinks.resize(m_threads);
    work(m_sinks[0], /*may_start_helpers=*/true);
    for (auto& helper : m_helpers) helper.join();
    if (m_error) std::rethrow_exception(m_error);

    Result result;
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

// ---------------------------------------------------------------------------
// Limits: checked on the walk's sizes, before anything is read or stored.

// `stopped`: the walk gave up past twice a limit (Walker), so `found` is
// only part of the tree and the figures say so.
void check_limits(const fs::path& source_dir, const std::vector<Found>& found, const Limits& limits,
                  bool stopped) {
  Totals total;
  std::map<std::string, Totals> directories;  // recursive totals, root excluded
  for (const Found& entry : found) {
    if (entry.type == EntryType::directory) {
      directories.try_emplace(entry.path);
      continue;
    }
    std::uint64_t bytes = entry.type == EntryType::file ? entry.stat.size : 0;
    total.files += 1;
    total.bytes += bytes;
    for (std::size_t slash = entry.path.find('/'); slash != std::string::npos;
         slash = entry.path.find('/', slash + 1)) {
      Totals& totals = directories[entry.path.substr(0, slash)];
      totals.files += 1;
      totals.bytes += bytes;
    }
  }
  bool too_many = total.files > limits.max_files;
  bool too_big = total.bytes > limits.max_bytes;
  if (!too_many && !too_big) return;

  // Rank by what is over the limit. A directory is listed only when no single
  // subdirectory holds most of it, so the list points at where the files
  // really are (data/train/ rather than data/ and data/train/ both).
  auto metric = [&](const Totals& totals) { return too_many ? totals.files : totals.bytes; };
  std::map<std::string, std::uint64_t> largest_child;
  for (const auto& [path, totals] : directories) {
    std::size_t slash = path.rfind('/');
    if (slash == std::string::npos) continue;
    auto& child = largest_child[path.substr(0, slash)];
    child = std::max(child, metric(totals));
  }
  std::vector<std::pair<std::string, Totals>> candidates;
  for (const auto& [path, totals] : directories) {
    auto it = largest_child.find(path);
    std::uint64_t child = it == largest_child.end() ? 0 : it->second;
    if (metric(totals) > 0 && child * 10 < metric(totals) * 8)
      candidates.emplace_back(path, totals);
  }
  std::stable_sort(candidates.begin(), candidates.end(), [&](const auto& a, const auto& b) {
    return metric(a.second) > metric(b.second);
  });
  std::vector<std::string> listed_directories;
  for (std::size_t i = 0; i < candidates.size() && i < k_listed_largest; ++i) {
    listed_directories.push_back(fmt::format("{}/ ({} {}, {})", display_path(candidates[i].first),
                                             with_commas(candidates[i].second.files),
                                             candidates[i].second.files == 1 ? "file" : "files",
                                             util::format_bytes(candidates[i].second.bytes)));
  }

  std::string message = fmt::format("snapshot of {}: ", display_path(source_dir.string()));
  std::vector<std::string> keys;
  if (too_many && too_big) {
    message += fmt::format("{} files and {}, more than the limits of {} files and {}",
                           with_commas(total.files), util::format_bytes(total.bytes),
                           with_commas(limits.max_files), util::format_bytes(limits.max_bytes));
    keys = {"snapshot.max_files", "snapshot.max_bytes"};
  } else if (too_many) {
    message += fmt::format("{} files, more than the limit of {}", with_commas(total.files),
                           with_commas(limits.max_files));
    keys = {"snapshot.max_files"};
  } else {
    message +=
        fmt::format("{} in {} files, more than the limit of {}", util::format_bytes(total.bytes),
                    with_commas(total.files), util::format_bytes(limits.max_bytes));
    keys = {"snapshot.max_bytes"};
  }
  if (stopped) message += " (the walk stopped there, past twice the limit)";
  const char* so_far = stopped ? " so far" : "";
  if (too_big) {
    std::vector<const Found*> files;
    for (const Found& entry : found) {
      if (entry.type == EntryType::file) files.push_back(&entry);
    }
    std::size_t count = std::min(files.size(), k_listed_largest);
    std::partial_sort(files.begin(), files.begin() + static_cast<std::ptrdiff_t>(count),
                      files.end(), [](const Found* a, const Found* b) {
                        return a->stat.size != b->stat.size ? a->stat.size > b->stat.size
                                                            : a->path < b->path;
                      });
    std::vector<std::string> listed_files;
    for (std::size_t i = 0; i < count; ++i) {
      listed_files.push_back(fmt::format("{} ({})", display_path(files[i]->path),
                                         util::format_bytes(files[i]->stat.size)));
    }
    message += fmt::format("; largest files{}: {}", so_far, util::join(listed_files, ", "));
  }
  if (!listed_directories.empty()) {
    message +=
        fmt::format("; largest directories{}: {}", so_far, util::join(listed_directories, ", "));
  }
  message += fmt::format(" — add them to .amlignore or raise {} in .amlrun/config.yml",
                         util::join(keys, " and "));
  throw SnapshotError(message);
}

// ---------------------------------------------------------------------------
// Copying files into the store, hashing them on the way (one read).

class Copier {
 public:
  Copier(const fs::path& source_dir, int root_fd, const Store& store)
      : m_source(source_dir), m_root_fd(root_fd), m_store(store) {}

  // Copies one file into the store; sets entry.sha256 and entry.stat to what
  // was read. A file that changes during the copy is read once more.
  void copy(Found& entry, std::span<char> buffer) {
    for (int attempt = 0;; ++attempt) {
      if (copy_once(entry, buffer)) return;
      struct stat now {};
      bool exists = ::fstatat(m_root_fd, entry.path.c_str(), &now, AT_SYMLINK_NOFOLLOW) == 0;
      if (!exists && errno == ENOENT) {
        throw SnapshotError(fmt::format("{} was deleted while the snapshot was taken; submit again",
                                        source_display(m_source, entry.path)));
      }
      if (attempt == 1 || !exists || !S_ISREG(now.st_mode)) {
        throw SnapshotError(fmt::format(
            "{} changed while it was being copied into the snapshot (twice in a row); stop "
            "whatever is writing to it, or add it to .amlignore, and submit again",
            source_display(m_source, entry.path)));
      }
      // Replaced meanwhile (an editor saves by rename: a new inode) is fine:
      // the retry reads the new file.
      entry.stat = FileStat::from(now);
    }
  }

 private:
  [[noreturn]] void unreadable(const Found& entry, int error_number) {
    throw SnapshotError(fmt::format("cannot read {}: {} — make it readable or add it to .amlignore",
                                    source_display(m_source, entry.path),
                                    std::strerror(error_number)));
  }

  // Returns false when the file changed while it was read.
  bool copy_once(Found& entry, std::span<char> buffer) {
    // O_NONBLOCK: if the file was replaced by a FIFO, the open must not hang.
    UniqueFd source(::openat(m_root_fd, entry.path.c_str(),
                             O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
    if (!source) {
      if (errno == ENOENT || errno == ELOOP) return false;  // replaced or deleted
      unreadable(entry, errno);
    }
    struct stat before {};
    if (::fstat(source.get(), &before) != 0) unreadable(entry, errno);
    if (!S_ISREG(before.st_mode) || before.st_dev != entry.stat.device ||
        before.st_ino != entry.stat.inode) {
      return false;  // not the file the walk saw
    }
    FileKind kind = kind_of_mode(before.st_mode);
    auto expected = static_cast<std::uint64_t>(before.st_size);
    // A file smaller than the buffer is read whole and hashed before anything
    // is written, so content the store already holds (another checkout of
    // the same code, a racy stat cache entry) costs no new file. Larger
    // files are hashed and written a buffer at a time, from the CPU cache.
    bool whole = expected < buffer.size();
    if (!whole) ::posix_fadvise(source.get(), 0, 0, POSIX_FADV_SEQUENTIAL);

    util::Sha256 hash;
    std::optional<util::AtomicFile> temp;
    std::uint64_t total = 0;
    for (;;) {
      std::span<char> space = whole ? buffer.subspan(total) : buffer;
      ssize_t n = ::read(source.get(), space.data(), space.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        unreadable(entry, errno);
      }
      if (n == 0) break;
      total += static_cast<std::uint64_t>(n);
      if (total > expected) return false;  // growing: stop rather than chase it
      if (whole) continue;
      hash.update(space.data(), static_cast<std::size_t>(n));
      if (!temp) temp.emplace(m_store.create_temp());
      temp->write(std::string_view(space.data(), static_cast<std::size_t>(n)));
    }
    struct stat after {};
    if (::fstat(source.get(), &after) != 0) unreadable(entry, errno);
    if (total != expected || after.st_size != before.st_size ||
        after.st_mtim.tv_sec != before.st_mtim.tv_sec ||
        after.st_mtim.tv_nsec != before.st_mtim.tv_nsec ||
        after.st_ctim.tv_sec != before.st_ctim.tv_sec ||
        after.st_ctim.tv_nsec != before.st_ctim.tv_nsec) {
      return false;
    }
    if (whole) hash.update(buffer.data(), static_cast<std::size_t>(total));
    std::string sha256 = hash.hex_digest();
    std::string name = object_name(sha256, kind);

    if (whole) {
      if (!m_store.has_intact_object(name, expected, kind)) {
        temp.emplace(m_store.create_temp());
        temp->write(std::string_view(buffer.data(), static_cast<std::size_t>(total)));
      }
    } else if (!temp) {
      temp.emplace(m_store.create_temp());  // not reached: a large file has content
    }
    if (temp) {
      struct timespec times[2] = {{k_object_mtime, 0}, {k_object_mtime, 0}};
      if (::fchmod(temp->fd(), object_mode(kind)) != 0 || ::futimens(temp->fd(), times) != 0) {
        util::throw_errno(fmt::format("cannot finish {}", temp->temp_path().string()));
      }
      m_store.publish_object(*temp, name, expected, kind);
    }
    entry.sha256 = std::move(sha256);
    entry.stat = FileStat::from(before);
    return true;
  }

  fs::path m_source;
  int m_root_fd;
  const Store& m_store;
};

unsigned worker_count(unsigned requested) {
  if (requested > 0) return requested;
  unsigned cores = std::thread::hardware_concurrency();
  return std::clamp(cores, 1u, 4u);
}

// Runs copier over work on up to `threads` threads; rethrows the error of the
// earliest failing file (in work order) so the message does not depend on
// thread timing more than it must. Little work stays on the calling thread:
// starting and joining a thread costs more than copying a few small files,
// and far more when the cores are busy and the new thread waits for one.
void copy_all(Copier& copier, std::vector<Found*>& work, unsigned threads,
              std::atomic<std::uint64_t>& hashed_bytes) {
  std::uint64_t work_bytes = 0;
  for (const Found* entry : work) work_bytes += entry->stat.size;
  if (work.size() < k_parallel_copy_files && work_bytes < k_parallel_copy_bytes) threads = 1;
  threads =
      static_cast<unsigned>(std::min<std::size_t>(threads, std::max<std::size_t>(work.size(), 1)));

  std::atomic<std::size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex error_mutex;
  std::exception_ptr first_error;
  std::size_t first_error_index = work.size();
  auto run = [&] {
    if (work.empty()) return;
    auto buffer = std::make_unique_for_overwrite<char[]>(k_copy_buffer_bytes);
    while (!failed.load(std::memory_order_relaxed)) {
      std::size_t index = next.fetch_add(1);
      if (index >= work.size()) return;
      try {
        copier.copy(*work[index], std::span<char>(buffer.get(), k_copy_buffer_bytes));
        hashed_bytes += work[index]->stat.size;
      } catch (...) {
        std::lock_guard lock(error_mutex);
        if (index < first_error_index) {
          first_error_index = index;
          first_error = std::current_exception();
        }
        failed = true;
      }
    }
  };
  std::vector<std::thread> helpers;
  try {
    for (unsigned i = 1; i < threads; ++i) helpers.emplace_back(run);
  } catch (const std::system_error&) {
    // No more threads to be had: copy with those already running.
  }
  run();
  for (auto& helper : helpers) helper.join();
  if (first_error) std::rethrow_exception(first_error);
}

// ---------------------------------------------------------------------------
// Materializing

// How materialize() copies objects; each step down is taken once for the
// rest of the snapshot when the filesystem turns the faster one down.
struct CopyMethod {
  bool try_clone = true;       // ioctl FICLONE: shares the blocks, copy on write
  bool try_copy_range = true;  // copy_file_range: an in-kernel copy
};

// Copies an object into a new working file. Never a hard link: a job may
// write into its working files in place, even keeping size and mtime, and
// nothing it does may reach the store and so a later run.
void copy_object(int object_fd, int parent_fd, const std::string& name, const Entry& entry,
                 const fs::path& target_dir, CopyMethod& method) {
  auto fail = [&](const char* what) {
    util::throw_errno(
        fmt::format("cannot {} {}", what, display_path((target_dir / entry.path).string())));
  };
  UniqueFd out(::openat(parent_fd, name.c_str(),
                        O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                        working_mode(kind_of_entry(entry))));
  if (!out) fail("create");
  std::uint64_t left = entry.size;
  if (method.try_clone && left > 0) {
    if (::ioctl(out.get(), FICLONE, object_fd) == 0) {
      left = 0;
    } else if (errno != EINTR) {
      // ext4, tmpfs, another filesystem, an object under inline data: none
      // of these will clone the next object either.
      method.try_clone = false;
    }
  }
  std::vector<char> buffer;
  while (left > 0) {
    if (method.try_copy_range) {
      ssize_t n = ::copy_file_range(object_fd, nullptr, out.get(), nullptr, left, 0);
      if (n > 0) {
        left -= static_cast<std::uint64_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP)) {
        method.try_copy_range = false;
        continue;
      }
      if (n == 0) break;  // the object is shorter than recorded
      fail("write");
    }
    if (buffer.empty()) buffer.resize(k_copy_buffer_bytes);
    ssize_t n = ::read(object_fd, buffer.data(), std::min<std::uint64_t>(buffer.size(), left));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("copy into");
    if (n == 0) break;
    util::write_all(
        out.get(), std::string_view(buffer.data(), static_cast<std::size_t>(n)),
        fmt::format("cannot write {}", display_path((target_dir / entry.path).string())));
    left -= static_cast<std::uint64_t>(n);
  }
  if (left != 0) {
    throw util::InfraError(
        fmt::format("stored object for {} is shorter than recorded", display_path(entry.path)));
  }
  if (::close(out.release()) != 0) fail("write");
}

}  // namespace

// ---------------------------------------------------------------------------

Snapshot take(const fs::path& source_dir, const Options& options) {
  // Entries changed from this moment on are "racy" for the stat cache.
  const std::int64_t started_ns = filesystem_clock_ns();
  util::timing_mark("snapshot: begin");
  std::function<void(const std::string&)> warn = options.warn;
  if (!warn) warn = [](const std::string& message) { util::warn(message); };

  UniqueFd root_fd(::open(source_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd) {
    int error = errno;
    if (error == ENOENT) {
      throw SnapshotError(
          fmt::format("source directory {} does not exist", display_path(source_dir.string())));
    }
    if (error == ENOTDIR) {
      throw SnapshotError(
          fmt::format("source directory {} is not a directory", display_path(source_dir.string())));
    }
    if (error == ELOOP) {
      throw SnapshotError(fmt::format(
          "source directory {} is a symbolic link loop: following its links never reaches a "
          "directory; point the link at the real directory",
          display_path(source_dir.string())));
    }
    throw SnapshotError(fmt::format("cannot read source directory {}: {}",
                                    display_path(source_dir.string()), std::strerror(error)));
  }
  Store store(options.store_dir);
  store.remove_stale_temp_files();
  util::timing_mark("snapshot: store opened");

  std::set<DeviceInode> excluded;
  std::vector<fs::path> exclude_paths = options.exclude_paths;
  exclude_paths.push_back(options.store_dir);
  for (const fs::path& path : exclude_paths) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) excluded.insert(DeviceInode{st.st_dev, st.st_ino});
  }

  // 1. Walk: what is in the snapshot, from lstat alone; unchanged files
  //    (stat cache hit, object intact) get their hash on the way.
  unsigned threads = worker_count(options.threads);
  fs::path cache_file = cache_file_for(options.store_dir, source_dir);
  StatCache old_cache = StatCache::load(cache_file);
  util::timing_mark("snapshot: stat cache loaded");
  Walker::Result walk = Walker(source_dir, root_fd.get(), std::move(excluded), old_cache,
                               store.objects_fd(), options.limits, threads)
                            .run();
  util::timing_mark("snapshot: walked");
  for (const auto& [path, message] : walk.warnings) warn(message);
  std::vector<Found>& found = walk.found;

  // 2. Limits, before anything is read or stored.
  check_limits(source_dir, found, options.limits, walk.stopped);

  // 3. Copy and hash what changed.
  std::vector<Found*> work;
  Snapshot result;
  for (Found& entry : found) {
    if (entry.type == EntryType::directory) {
      ++result.directories;
    } else if (entry.type == EntryType::symlink) {
      ++result.symlinks;
    } else {
      ++result.files;
      result.bytes += entry.stat.size;
      if (entry.sha256.empty()) work.push_back(&entry);
    }
  }
  Copier copier(source_dir, root_fd.get(), store);
  std::atomic<std::uint64_t> hashed_bytes{0};
  copy_all(copier, work, threads, hashed_bytes);
  result.hashed_files = work.size();
  result.hashed_bytes = hashed_bytes;
  util::timing_mark("snapshot: copied");

  // 4. The manifest names the snapshot.
  std::sort(found.begin(), found.end(),
            [](const Found& a, const Found& b) { return a.path < b.path; });
  std::vector<Entry> entries;
  entries.reserve(found.size());
  std::vector<StatCache::NewEntry> cache_entries;
  cache_entries.reserve(result.files);
  for (Found& item : found) {
    Entry entry;
    entry.path = std::move(item.path);
    entry.type = item.type;
    if (item.type == EntryType::file) {
      FileKind kind = kind_of_mode(item.stat.mode);
      entry.executable = kind.executable;
      entry.owner_only = kind.owner_only;
      entry.size = item.stat.size;
      entry.sha256 = std::move(item.sha256);
    } else if (item.type == EntryType::symlink) {
      entry.link_target = std::move(item.link_target);
      entry.size = entry.link_target.size();
    }
    entries.push_back(std::move(entry));
    if (item.type == EntryType::file) {
      cache_entries.push_back({entries.back().path, item.stat, entries.back().sha256});
    }
  }
  std::string text = serialize_manifest(entries);
  result.id = util::sha256_hex(text);
  store.write_manifest(result.id, text);
  util::timing_mark("snapshot: manifest");

  // 5. The cache for next time; losing it only costs a re-read. When every
  //    file was a fresh hit and no path came or went, the new cache would
  //    differ from the old one only in its start time, and every entry is
  //    already older than the old start time (that is what a fresh hit
  //    means), so the old file stays as it is: an unchanged tree is
  //    snapshotted without writing anything.
  bool cache_unchanged = work.empty() && old_cache.size() == cache_entries.size();
  try {
    if (!cache_unchanged) StatCache::save(cache_file, started_ns, cache_entries);
  } catch (const std::exception& error) {
    warn(fmt::format(
        "could not save the snapshot stat cache ({}); the next snapshot will read every file",
        error.what()));
  }
  util::timing_mark("snapshot: stat cache saved");
  return result;
}

Manifest read_manifest(const fs::path& store_dir, const std::string& snapshot_id) {
  if (!is_valid_id(snapshot_id)) {
    throw SnapshotError(fmt::format("{} is not a snapshot id (64 lower-case hex digits)",
                                    util::printable(snapshot_id)));
  }
  fs::path file = store_dir / "manifests" / snapshot_id;
  std::string text;
  try {
    text = util::read_file(file);
  } catch (const std::exception&) {
    if (::access(file.c_str(), F_OK) != 0 && errno == ENOENT) {
      throw SnapshotError(fmt::format("snapshot {} is not in {}", snapshot_id, store_dir.string()));
    }
    throw;
  }
  if (util::sha256_hex(text) != snapshot_id) {
    throw SnapshotError(
        fmt::format("{}: corrupt snapshot manifest: its content does not match its id; take a new "
                    "snapshot (submit the job again)",
                    file.string()));
  }
  Manifest manifest;
  manifest.id = snapshot_id;
  manifest.entries = parse_manifest(text, file.string());
  return manifest;
}

void materialize(const fs::path& store_dir, const std::string& snapshot_id,
                 const fs::path& target_dir) {
  Manifest manifest = read_manifest(store_dir, snapshot_id);

  if (::mkdir(target_dir.c_str(), 0755) != 0) {
    if (errno != EEXIST) util::throw_errno(fmt::format("cannot create {}", target_dir.string()));
    struct stat st {};
    std::error_code error;
    if (::lstat(target_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) ||
        !fs::is_empty(target_dir, error) || error) {
      throw SnapshotError(fmt::format(
          "cannot materialize snapshot into {}: it exists and is not an empty directory",
          target_dir.string()));
    }
  }
  UniqueFd target_fd(::open(target_dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!target_fd) util::throw_errno(fmt::format("cannot open {}", target_dir.string()));
  util::SafeDir target = util::SafeDir::adopt(std::move(target_fd), target_dir);
  UniqueFd objects_fd = open_directory(store_dir / "objects");
  // Manifest order keeps siblings together: the last directory stays open.
  std::optional<util::SafeDir> last;
  auto directory = [&](const std::string& parent) {
    if (parent.empty()) return target.fd();
    if (!last || last->path() != target_dir / parent) last = target.dir(parent);
    return last->fd();
  };
  CopyMethod method;

  // Symlinks come last: while directories and files are created the target
  // holds no symlink at all, so nothing can redirect a later entry.
  for (const Entry& entry : manifest.entries) {
    auto [parent, name] = util::split_parent(entry.path);
    if (entry.type == EntryType::directory) {
      if (::mkdirat(directory(parent), name.c_str(), 0755) != 0) {
        util::throw_errno(
            fmt::format("cannot create {}", display_path((target_dir / entry.path).string())));
      }
      continue;
    }
    if (entry.type != EntryType::file) continue;
    std::string object = object_name(entry.sha256, kind_of_entry(entry));
    UniqueFd object_fd(
        ::openat(objects_fd.get(), object.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    struct stat st {};
    if (!object_fd && errno != ENOENT) {
      util::throw_errno(fmt::format("cannot open {}", (store_dir / "objects" / object).string()));
    }
    if (!object_fd) {
      throw SnapshotError(
          fmt::format("snapshot {}: the stored content of {} is missing from {}; submit again to "
                      "take a new snapshot",
                      snapshot_id, display_path(entry.path), (store_dir / "objects").string()));
    }
    // Checked on the open object, so what is checked is what is copied.
    if (::fstat(object_fd.get(), &st) != 0) {
      util::throw_errno(fmt::format("cannot stat {}", (store_dir / "objects" / object).string()));
    }
    if (!object_intact(st, entry.size, kind_of_entry(entry))) {
      throw SnapshotError(fmt::format(
          "snapshot {}: the stored content of {} was modified after it was stored; submit again "
          "to take a new snapshot",
          snapshot_id, display_path(entry.path)));
    }
    copy_object(object_fd.get(), directory(parent), name, entry, target_dir, method);
  }
  for (const Entry& entry : manifest.entries) {
    if (entry.type != EntryType::symlink) continue;
    auto [parent, name] = util::split_parent(entry.path);
    if (::symlinkat(entry.link_target.c_str(), directory(parent), name.c_str()) != 0) {
      util::throw_errno(fmt::format("cannot create symlink {}",
                                    display_path((target_dir / entry.path).string())));
    }
  }
}

}  // namespace amlrun::snapshot
