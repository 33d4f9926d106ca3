#include "lib/snapshot/object_store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>
#include <algorithm>
#include <cerrno>

#include "lib/snapshot/error.hpp"
#include "lib/snapshot/snapshot.hpp"
#include "lib/snapshot/stat_cache.hpp"
#include "lib/util/error.hpp"
#include "lib/util/hash.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::snapshot {

namespace fs = std::filesystem;

namespace detail {

using util::UniqueFd;

FileKind kind_of_mode(std::uint32_t mode) {
  return FileKind{(mode & S_IXUSR) != 0, (mode & (S_IRGRP | S_IROTH)) != (S_IRGRP | S_IROTH)};
}

FileKind kind_of_entry(const Entry& entry) {
  return FileKind{entry.executable, entry.owner_only};
}

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

unsigned working_mode(FileKind kind) {
  return object_mode(kind) | 0200;
}

bool object_intact(const struct stat& st, std::uint64_t size, FileKind kind) {
  return S_ISREG(st.st_mode) && static_cast<std::uint64_t>(st.st_size) == size &&
         (st.st_mode & 07777) == object_mode(kind) && st.st_mtim.tv_sec == k_object_mtime &&
         st.st_mtim.tv_nsec == 0;
}

util::UniqueFd open_directory(const fs::path& path) {
  util::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) util::throw_errno(fmt::format("cannot open {}", path.string()));
  return fd;
}

void make_directory(const fs::path& path) {
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
    util::throw_errno(fmt::format("cannot create {}", path.string()));
  }
}

fs::path cache_file_for(const fs::path& store_dir, const fs::path& source_dir) {
  std::error_code error;
  fs::path canonical = fs::weakly_canonical(source_dir, error);
  if (error) canonical = fs::absolute(source_dir).lexically_normal();
  return store_dir / "cache" / (util::sha256_hex(canonical.string()) + ".stat");
}

Store::Store(const fs::path& store_dir) : m_dir(store_dir) {
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

void Store::remove_stale_temp_files() const {
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

bool Store::has_intact_object(const std::string& name, std::uint64_t size, FileKind kind) const {
  struct stat st {};
  return ::fstatat(m_objects_fd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
         object_intact(st, size, kind);
}

util::AtomicFile Store::create_temp() const {
  return create_temp_in(m_objects_fd.get(), "objects");
}

void Store::publish_object(util::AtomicFile& temp, const std::string& name, std::uint64_t size,
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

void Store::write_manifest(const std::string& id, std::string_view text) const {
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

util::AtomicFile Store::create_temp_in(int dir_fd, const char* sub) const {
  if (m_use_tmpfile.load(std::memory_order_relaxed)) {
    if (auto temp = util::AtomicFile::try_unnamed(dir_fd, m_dir / sub, 0600)) {
      return std::move(*temp);
    }
    m_use_tmpfile = false;  // this filesystem has no O_TMPFILE: named temps from now on
  }
  return util::AtomicFile::named_in(tmp_fd(), m_dir / "tmp", 0600);
}

int Store::tmp_fd() const {
  std::lock_guard lock(m_tmp_mutex);
  if (!m_tmp_fd) {
    make_directory(m_dir / "tmp");
    m_tmp_fd = open_directory(m_dir / "tmp");
  }
  return m_tmp_fd.get();
}

}  // namespace detail

namespace {

bool is_valid_id(const std::string& id) {
  return id.size() == 64 && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

}  // namespace

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

}  // namespace amlrun::snapshot
