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
#include "lib/util/safe_dir.hpp"
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

// Directories below the destination, reached one component at a time
// without following a link (util::SafeDir): no symbolic link in the
// destination is ever followed. The last directory stays open, since the
// plan lists a directory's files together.
class DestinationDirs {
 public:
  explicit DestinationDirs(const fs::path& root) : m_root(open_root(root)) {}

  const util::SafeDir& open(const std::string& relative_dir) {
    if (relative_dir.empty()) return m_root;
    if (!m_last || m_last_relative != relative_dir) {
      try {
        m_last = m_root.make_dirs(relative_dir);
      } catch (const util::PathInTheWay& in_the_way) {
        throw util::InputError(fmt::format(
            "cannot write into {}: it is a file or a symbolic link, not a directory; move it "
            "away or choose another destination",
            in_the_way.where().string()));
      }
      m_last_relative = relative_dir;
    }
    return *m_last;
  }

 private:
  // The destination itself is the user's own path, followed as given.
  static util::SafeDir open_root(const fs::path& root) {
    std::error_code error;
    fs::create_directories(root, error);
    util::UniqueFd fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) util::throw_errno(fmt::format("cannot open the destination {}", root.string()));
    return util::SafeDir::adopt(std::move(fd), root, ExitCode::invalid_input);
  }

  util::SafeDir m_root;
  std::optional<util::SafeDir> m_last;
  std::string m_last_relative;
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
    const util::SafeDir& directory = dirs.open(parent);
    if (S_ISDIR(directory.type_of(name))) {
      throw util::InputError(
          fmt::format("cannot write {}: a directory of that name is in the way", shown.string()));
    }
    // Written beside its name and renamed over it: a link planted at the
    // name is replaced, never written through.
    util::AtomicFile output(directory.fd(), name, shown, file.mode);
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
    output.commit(/*durable=*/false);  // synced above when durable; directories at the end
    ++progress.files_done;
    if (options.progress) options.progress(progress);
    copied.push_back(std::move(done));
  }
  if (options.durable) {
    // The new names must survive a crash as well as the bytes.
    for (const auto& directory : plan.directories) {
      if (::fsync(dirs.open(directory).fd()) != 0) {
        util::throw_errno(fmt::format("cannot sync {}", (destination / directory).string()));
      }
    }
    util::fsync_directory(destination);
  }
  return copied;
}

}  // namespace amlrun::artifacts
