#include "lib/snapshot/copier.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <system_error>
#include <thread>

#include "lib/snapshot/error.hpp"
#include "lib/util/error.hpp"
#include "lib/util/hash.hpp"

namespace amlrun::snapshot::detail {

using util::UniqueFd;

namespace {

constexpr std::size_t k_copy_buffer_bytes =
    std::size_t{256} * 1024;  // fits in L2: read, hash and write from cache
// Below both of these, files are copied on the calling thread (copy_all).
constexpr std::size_t k_parallel_copy_files = 64;
constexpr std::uint64_t k_parallel_copy_bytes = 4 << 20;

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

}  // namespace

unsigned worker_count(unsigned requested) {
  if (requested > 0) return requested;
  unsigned cores = std::thread::hardware_concurrency();
  return std::clamp(cores, 1u, 4u);
}

// The error of the earliest failing file (in work order) is rethrown so the
// message does not depend on thread timing more than it must. Little work
// stays on the calling thread: starting and joining a thread costs more than
// copying a few small files, and far more when the cores are busy and the
// new thread waits for one.
void copy_all(const fs::path& source_dir, int root_fd, const Store& store,
              std::vector<Found*>& work, unsigned threads, std::atomic<std::uint64_t>& hashed_bytes,
              const CopyTick& tick) {
  Copier copier(source_dir, root_fd, store);
  std::uint64_t work_bytes = 0;
  for (const Found* entry : work) work_bytes += entry->stat.size;
  if (work.size() < k_parallel_copy_files && work_bytes < k_parallel_copy_bytes) threads = 1;
  threads =
      static_cast<unsigned>(std::min<std::size_t>(threads, std::max<std::size_t>(work.size(), 1)));

  std::atomic<std::size_t> next{0};
  std::atomic<std::uint64_t> files_done{0};
  std::atomic<bool> failed{false};
  const std::thread::id caller = std::this_thread::get_id();
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
        ++files_done;
        // Only the calling thread reports, so the callback needs no lock.
        if (tick && std::this_thread::get_id() == caller) tick(files_done, hashed_bytes, false);
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
  if (tick) tick(files_done, hashed_bytes, true);
}
}  // namespace amlrun::snapshot::detail
