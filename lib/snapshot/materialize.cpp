// materialize(): a stored snapshot becomes a run's working directory, as
// copies the run owns (snapshot.hpp says why never hard links).
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <algorithm>
#include <cerrno>
#include <optional>
#include <vector>

#include "lib/snapshot/error.hpp"
#include "lib/snapshot/object_store.hpp"
#include "lib/snapshot/snapshot.hpp"
#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/safe_dir.hpp"

namespace amlrun::snapshot {

namespace fs = std::filesystem;
using namespace detail;
using util::UniqueFd;

namespace {

constexpr std::size_t k_copy_buffer_bytes =
    std::size_t{256} * 1024;  // where no in-kernel copy is had

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
