#include "lib/artifacts/tree_copy.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <algorithm>
#include <cerrno>
#include <optional>

#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/hash.hpp"
#include "lib/util/random.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::artifacts {

namespace {

std::string join_relative(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "/" + name;
}

std::string describe_type(mode_t mode) {
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
  return "not a regular file";
}

struct Planner {
  CopyPlan& plan;
  fs::path root;  // canonical
  std::string root_name;
  // The workspace's device and inode when it may lie inside the source.
  dev_t workspace_device = 0;
  ino_t workspace_inode = 0;
  bool has_workspace = false;

  void add_file(const fs::path& source, const std::string& relative, const struct stat& st) {
    plan.files.push_back({source, relative, static_cast<std::uint64_t>(st.st_size),
                          static_cast<unsigned>(st.st_mode & 0777)});
    plan.total_bytes += static_cast<std::uint64_t>(st.st_size);
  }

  // A symbolic link: its target is taken only when it is a regular file
  // inside the root.
  void add_link(const fs::path& link, const std::string& relative) {
    std::error_code error;
    fs::path shown = fs::read_symlink(link, error);
    fs::path target = fs::canonical(link, error);
    if (error) {
      plan.skipped.push_back(
          {relative, fmt::format("a dangling symbolic link to {}", shown.string())});
      return;
    }
    if (!util::is_within(root, target)) {
      plan.skipped.push_back(
          {relative, fmt::format("a symbolic link to {}, outside {}", shown.string(), root_name)});
      return;
    }
    struct stat st {};
    if (::stat(target.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
      plan.skipped.push_back(
          {relative, fmt::format("a symbolic link to {}, which is {}", shown.string(),
                                 S_ISDIR(st.st_mode) ? "a directory (not followed)"
                                                     : describe_type(st.st_mode))});
      return;
    }
    add_file(target, relative, st);
  }

  void add(const fs::path& path, const std::string& relative) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
      util::throw_errno(fmt::format("cannot read {}", path.string()));
    }
    if (S_ISREG(st.st_mode)) {
      add_file(path, relative, st);
    } else if (S_ISLNK(st.st_mode)) {
      add_link(path, relative);
    } else if (S_ISDIR(st.st_mode)) {
      if (has_workspace && st.st_dev == workspace_device && st.st_ino == workspace_inode) {
        plan.skipped.push_back({relative, "the amlrun workspace (never copied into itself)"});
        return;
      }
      walk(path, relative);
    } else {
      plan.skipped.push_back({relative, describe_type(st.st_mode)});
    }
  }

  void walk(const fs::path& directory, const std::string& relative) {
    if (!relative.empty()) plan.directories.push_back(relative);
    std::vector<std::string> names;
    std::error_code error;
    for (fs::directory_iterator it(directory, error), end; !error && it != end;
         it.increment(error)) {
      names.push_back(it->path().filename().string());
    }
    if (error) {
      throw util::InfraError(
          fmt::format("cannot read {}: {}", directory.string(), error.message()));
    }
    // Sorted, so the copy fills one directory at a time and the order is
    // the same on every machine.
    std::sort(names.begin(), names.end());
    for (const auto& name : names) add(directory / name, join_relative(relative, name));
  }
};

// Directories below the destination, opened one component at a time with
// O_NOFOLLOW from the destination's descriptor: no symbolic link in the
// destination is ever followed. The last directory stays open, since the
// plan lists a directory's files together.
class DestinationDirs {
 public:
  explicit DestinationDirs(const fs::path& root) : m_root(root) {
    std::error_code error;
    fs::create_directories(root, error);
    m_root_fd = util::UniqueFd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!m_root_fd) util::throw_errno(fmt::format("cannot open the destination {}", root.string()));
  }

  int open(const std::string& relative_dir) {
    if (relative_dir.empty()) return m_root_fd.get();
    if (m_cached && relative_dir == m_cached_path) return m_cached.get();
    util::UniqueFd current;
    int parent = m_root_fd.get();
    std::string walked;
    for (const auto& part : util::split(relative_dir, '/')) {
      walked = join_relative(walked, part);
      util::UniqueFd next(
          ::openat(parent, part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!next && errno == ENOENT) {
        if (::mkdirat(parent, part.c_str(), 0755) != 0 && errno != EEXIST) {
          util::throw_errno(fmt::format("cannot create {}", (m_root / walked).string()));
        }
        next = util::UniqueFd(
            ::openat(parent, part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      }
      if (!next) {
        if (errno == ENOTDIR || errno == ELOOP) {
          throw util::InputError(fmt::format(
              "cannot write into {}: it is a file or a symbolic link, not a directory; move it "
              "away or choose another destination",
              (m_root / walked).string()));
        }
        util::throw_errno(fmt::format("cannot open {}", (m_root / walked).string()));
      }
      current = std::move(next);
      parent = current.get();
    }
    m_cached = std::move(current);
    m_cached_path = relative_dir;
    return m_cached.get();
  }

  const fs::path& root() const { return m_root; }

 private:
  fs::path m_root;
  util::UniqueFd m_root_fd;
  util::UniqueFd m_cached;
  std::string m_cached_path;
};

// One file being written: created fresh (O_EXCL), or, when the name is taken,
// a temp file renamed over it at the end. Removed unless committed.
class OutputFile {
 public:
  OutputFile(int dir_fd, std::string name, unsigned mode, const fs::path& shown)
      : m_dir_fd(dir_fd), m_name(std::move(name)), m_shown(shown) {
    int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
    m_fd = util::UniqueFd(::openat(dir_fd, m_name.c_str(), flags, mode));
    if (!m_fd && errno == EEXIST) {
      m_temp = fmt::format(".{}.amlrun-{}", m_name.substr(0, 200), util::random_hex(4));
      m_fd = util::UniqueFd(::openat(dir_fd, m_temp.c_str(), flags, mode));
    }
    if (!m_fd) util::throw_errno(fmt::format("cannot create {}", shown.string()));
  }
  ~OutputFile() {
    if (!m_committed) ::unlinkat(m_dir_fd, m_temp.empty() ? m_name.c_str() : m_temp.c_str(), 0);
  }
  int fd() const { return m_fd.get(); }
  void commit() {
    if (::close(m_fd.release()) != 0)
      util::throw_errno(fmt::format("cannot write {}", m_shown.string()));
    if (!m_temp.empty() && ::renameat(m_dir_fd, m_temp.c_str(), m_dir_fd, m_name.c_str()) != 0) {
      if (errno == EISDIR) {
        throw util::InputError(fmt::format(
            "cannot write {}: a directory of that name is in the way", m_shown.string()));
      }
      util::throw_errno(fmt::format("cannot replace {}", m_shown.string()));
    }
    m_committed = true;
  }

 private:
  int m_dir_fd;
  std::string m_name;
  std::string m_temp;
  fs::path m_shown;
  util::UniqueFd m_fd;
  bool m_committed = false;
};

util::UniqueFd open_source(const PlannedFile& file) {
  // Non-blocking so a FIFO swapped in since planning cannot hang us; the
  // type is checked before reading.
  util::UniqueFd fd(::open(file.source.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
  if (!fd) util::throw_errno(fmt::format("cannot open {}", file.source.string()));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    throw util::InfraError(fmt::format("{} is no longer a regular file", file.source.string()));
  }
  ::fcntl(fd.get(), F_SETFL, 0);
  return fd;
}

constexpr std::size_t k_step = 8 << 20;  // bytes between progress reports

}  // namespace

void plan_tree(CopyPlan& plan, const fs::path& root, const fs::path& source,
               const std::string& destination_prefix, const std::string& root_name,
               const fs::path& workspace) {
  std::error_code error;
  fs::path canonical_root = fs::canonical(root, error);
  if (error) {
    throw util::InfraError(fmt::format("cannot read {}: {}", root.string(), error.message()));
  }
  // The source itself was joined lexically; a link on the way to it must not
  // lead out of the root either.
  bool is_root = source.lexically_normal() == root.lexically_normal();
  fs::path parent = is_root ? canonical_root : fs::canonical(source.parent_path(), error);
  if (error || !util::is_within(canonical_root, parent)) {
    throw util::InputError(
        fmt::format("{}: a symbolic link on the way leads out of {}", source.string(), root_name));
  }
  Planner planner{plan, canonical_root, root_name};
  struct stat workspace_stat {};
  if (!workspace.empty() && ::stat(workspace.c_str(), &workspace_stat) == 0) {
    planner.workspace_device = workspace_stat.st_dev;
    planner.workspace_inode = workspace_stat.st_ino;
    planner.has_workspace = true;
  }
  std::string prefix = destination_prefix.empty() ? source.filename().string() : destination_prefix;
  struct stat st {};
  if (::lstat(source.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    planner.walk(source, destination_prefix);
  } else {
    planner.add(source, prefix);
  }
}

void check_destination_outside(const fs::path& destination, const fs::path& workspace) {
  std::error_code error;
  fs::path resolved = fs::weakly_canonical(fs::absolute(destination), error);
  fs::path root = fs::weakly_canonical(workspace, error);
  if (!error && util::is_within(root, resolved)) {
    throw util::InputError(
        fmt::format("{} is inside the workspace {}; choose a directory outside it",
                    destination.string(), root.string()));
  }
}

std::vector<CopiedFile> copy_tree(const CopyPlan& plan, const fs::path& destination,
                                  const CopyOptions& options) {
  DestinationDirs dirs(destination);
  CopyProgress progress;
  progress.bytes_total = plan.total_bytes;
  progress.files_total = plan.files.size();
  std::vector<CopiedFile> copied;
  copied.reserve(plan.files.size());
  for (const auto& directory : plan.directories) dirs.open(directory);
  std::vector<char> buffer;
  bool kernel_copy = !options.hash;  // copy_file_range until the kernel refuses it
  for (const auto& file : plan.files) {
    std::size_t slash = file.relative.rfind('/');
    std::string parent = slash == std::string::npos ? "" : file.relative.substr(0, slash);
    std::string name = slash == std::string::npos ? file.relative : file.relative.substr(slash + 1);
    fs::path shown = destination / file.relative;
    util::UniqueFd source = open_source(file);
    OutputFile output(dirs.open(parent), name, file.mode, shown);
    std::optional<util::Sha256> hash;
    if (options.hash) hash.emplace();
    std::uint64_t size = 0;
    for (;;) {
      ssize_t moved = -1;
      if (kernel_copy) {
        moved = ::copy_file_range(source.get(), nullptr, output.fd(), nullptr, k_step, 0);
        if (moved < 0 &&
            (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP ||
             errno == EPERM) &&
            size == 0) {
          kernel_copy = false;
          continue;
        }
        if (moved < 0)
          util::throw_errno(
              fmt::format("cannot copy {} to {}", file.source.string(), shown.string()));
      } else {
        buffer.resize(1 << 20);
        moved = ::read(source.get(), buffer.data(), buffer.size());
        if (moved < 0) {
          if (errno == EINTR) continue;
          util::throw_errno(fmt::format("cannot read {}", file.source.string()));
        }
        if (moved > 0) {
          if (hash) hash->update(buffer.data(), static_cast<std::size_t>(moved));
          util::write_all(output.fd(),
                          std::string_view(buffer.data(), static_cast<std::size_t>(moved)),
                          fmt::format("cannot write {}", shown.string()));
        }
      }
      if (moved == 0) break;
      size += static_cast<std::uint64_t>(moved);
      progress.bytes_done += static_cast<std::uint64_t>(moved);
      if (options.progress) options.progress(progress);
    }
    CopiedFile done{file.relative, size, hash ? hash->hex_digest() : std::string()};
    if (options.check) options.check(file, done.sha256);
    if (options.durable && ::fsync(output.fd()) != 0) {
      util::throw_errno(fmt::format("cannot write {}", shown.string()));
    }
    output.commit();
    ++progress.files_done;
    if (options.progress) options.progress(progress);
    copied.push_back(std::move(done));
  }
  if (options.durable) {
    // The new names must survive a crash as well as the bytes.
    for (const auto& directory : plan.directories) {
      if (::fsync(dirs.open(directory)) != 0) {
        util::throw_errno(fmt::format("cannot sync {}", (destination / directory).string()));
      }
    }
    util::fsync_directory(destination);
  }
  return copied;
}

}  // namespace amlrun::artifacts
