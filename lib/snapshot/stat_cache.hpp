#pragma once
// The stat cache, like git's index: for every file of the last snapshot of a
// source directory, the stat fields that change whenever the file is written
// (device, inode, size, mtime, ctime, mode) and the sha256 of its content. A
// file whose fields all still match is not read again.
//
// "Racy" entries (git's term): a file written in the same clock tick in which
// a snapshot began can change again without its times changing. So an entry is
// trusted only when its mtime and ctime are strictly older than the moment the
// snapshot that recorded it began; newer ones are hashed again (and become
// trustworthy once a later snapshot starts after them). ctime cannot be set
// by user tools, so `touch -d` in the past does not fool it.
//
// The file is a rebuildable cache: binary, checksummed, written by rename.
// A missing, truncated, corrupt or foreign-version file reads as empty.
#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace amlrun::snapshot {

struct FileStat {
  std::uint64_t device = 0;
  std::uint64_t inode = 0;
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  std::int64_t ctime_ns = 0;
  std::uint32_t mode = 0;

  static FileStat from(const struct stat& st);
  bool operator==(const FileStat&) const = default;
};

class StatCache {
 public:
  // Never throws: a cache that cannot be read is an empty cache.
  static StatCache load(const std::filesystem::path& file);

  // The recorded sha256 (hex) of `path` when `current` matches the recorded
  // stat exactly and the entry is not racy. Safe to call from many threads.
  std::optional<std::string> find_fresh(std::string_view path, const FileStat& current) const;

  struct NewEntry {
    std::string_view path;
    FileStat stat;
    std::string_view sha256_hex;
  };
  // Writes a cache of `entries` (sorted by path, unique) by rename, without
  // fsync: losing it only costs a re-hash. `started_ns` is when the snapshot
  // that produced them began, on the filesystem clock. Throws
  // util::InfraError when it cannot be written.
  static void save(const std::filesystem::path& file, std::int64_t started_ns,
                   const std::vector<NewEntry>& entries);

  std::size_t size() const { return m_records.size(); }

 private:
  struct Record {
    std::string_view path;  // into m_data
    FileStat stat;
    const unsigned char* sha256;  // 32 bytes in m_data
  };
  std::shared_ptr<const std::string> m_data;  // the file, which the records point into
  std::int64_t m_started_ns = 0;
  std::vector<Record> m_records;  // sorted by path, as written
};

// The filesystem's notion of "now" as it stamps mtime/ctime (the kernel's
// coarse clock), for the racy check.
std::int64_t filesystem_clock_ns();

}  // namespace amlrun::snapshot
