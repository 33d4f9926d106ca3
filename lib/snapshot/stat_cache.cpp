#include "lib/snapshot/stat_cache.hpp"

#include <time.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "lib/util/fs.hpp"
#include "lib/util/hash.hpp"

namespace amlrun::snapshot {

namespace {

// Layout (native byte order; the cache never leaves this machine):
//   magic[16] "amlrun-statcache" | u32 version | u32 count | i64 started_ns
//   count x { u32 path_length | path | u64 device | u64 inode | u64 size |
//             i64 mtime_ns | i64 ctime_ns | u32 mode | u8 sha256[32] }
//   u8 checksum[32] = sha256 of everything before it
constexpr char k_magic[16] = {'a', 'm', 'l', 'r', 'u', 'n', '-', 's',
                              't', 'a', 't', 'c', 'a', 'c', 'h', 'e'};
constexpr std::uint32_t k_version = 1;
// A file whose ctime is a whole second probably lives on a filesystem with
// coarse timestamps (FAT, some network mounts); such a file could be changed
// later in the same second without its times changing, so it needs a margin.
constexpr std::int64_t k_coarse_margin_ns = 2'000'000'000;

std::int64_t to_ns(const struct timespec& ts) {
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

template <typename T>
void put_value(std::string& out, T value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof value);
}

class Reader {
 public:
  explicit Reader(std::string_view data) : m_data(data) {}
  template <typename T>
  bool get(T& value) {
    if (m_data.size() - m_offset < sizeof value) return false;
    std::memcpy(&value, m_data.data() + m_offset, sizeof value);
    m_offset += sizeof value;
    return true;
  }
  bool get_bytes(std::size_t count, std::string_view& out) {
    if (m_data.size() - m_offset < count) return false;
    out = m_data.substr(m_offset, count);
    m_offset += count;
    return true;
  }
  std::size_t offset() const { return m_offset; }

 private:
  std::string_view m_data;
  std::size_t m_offset = 0;
};

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

std::string raw_sha256(std::string_view data) {
  std::string hex = util::sha256_hex(data);
  std::string raw(32, '\0');
  for (std::size_t i = 0; i < 32; ++i) {
    raw[i] = static_cast<char>(hex_value(hex[2 * i]) * 16 + hex_value(hex[2 * i + 1]));
  }
  return raw;
}

}  // namespace

FileStat FileStat::from(const struct stat& st) {
  FileStat stat;
  stat.device = st.st_dev;
  stat.inode = st.st_ino;
  stat.size = static_cast<std::uint64_t>(st.st_size);
  stat.mtime_ns = to_ns(st.st_mtim);
  stat.ctime_ns = to_ns(st.st_ctim);
  stat.mode = st.st_mode;
  return stat;
}

std::int64_t filesystem_clock_ns() {
  struct timespec now {};
  ::clock_gettime(CLOCK_REALTIME_COARSE, &now);
  return to_ns(now);
}

StatCache StatCache::load(const std::filesystem::path& file) {
  StatCache cache;
  auto data = std::make_shared<std::string>();
  try {
    *data = util::read_file(file);
  } catch (const std::exception&) {
    return cache;  // missing or unreadable: start cold
  }
  if (data->size() < sizeof k_magic + 32) return cache;
  std::string_view body(data->data(), data->size() - 32);
  if (raw_sha256(body) != std::string_view(*data).substr(body.size())) return cache;

  Reader reader(body);
  std::string_view magic;
  std::uint32_t version = 0;
  std::uint32_t count = 0;
  std::int64_t started_ns = 0;
  if (!reader.get_bytes(sizeof k_magic, magic) ||
      magic != std::string_view(k_magic, sizeof k_magic) || !reader.get(version) ||
      version != k_version || !reader.get(count) || !reader.get(started_ns)) {
    return cache;
  }
  std::vector<Record> records;
  records.reserve(std::min<std::size_t>(count, body.size() / 88));
  for (std::uint32_t i = 0; i < count; ++i) {
    std::uint32_t path_length = 0;
    std::string_view digest;
    Record record;
    if (!reader.get(path_length) || !reader.get_bytes(path_length, record.path) ||
        !reader.get(record.stat.device) || !reader.get(record.stat.inode) ||
        !reader.get(record.stat.size) || !reader.get(record.stat.mtime_ns) ||
        !reader.get(record.stat.ctime_ns) || !reader.get(record.stat.mode) ||
        !reader.get_bytes(32, digest)) {
      return cache;
    }
    if (!records.empty() && !(records.back().path < record.path))
      return cache;  // lookups need the order
    record.sha256 = reinterpret_cast<const unsigned char*>(digest.data());
    records.push_back(record);
  }
  if (reader.offset() != body.size()) return cache;
  cache.m_data = std::move(data);
  cache.m_started_ns = started_ns;
  cache.m_records = std::move(records);
  return cache;
}

std::optional<std::string> StatCache::find_fresh(std::string_view path,
                                                 const FileStat& current) const {
  auto it = std::lower_bound(
      m_records.begin(), m_records.end(), path,
      [](const Record& record, std::string_view key) { return record.path < key; });
  if (it == m_records.end() || it->path != path || !(it->stat == current)) {
    return std::nullopt;
  }
  std::int64_t margin = current.ctime_ns % 1'000'000'000 == 0 ? k_coarse_margin_ns : 0;
  if (current.mtime_ns >= m_started_ns || current.ctime_ns + margin >= m_started_ns) {
    return std::nullopt;  // racy: may have changed within the tick we hashed it in
  }
  static const char digits[] = "0123456789abcdef";
  std::string hex(64, '0');
  for (std::size_t i = 0; i < 32; ++i) {
    hex[2 * i] = digits[it->sha256[i] >> 4];
    hex[2 * i + 1] = digits[it->sha256[i] & 15];
  }
  return hex;
}

void StatCache::save(const std::filesystem::path& file, std::int64_t started_ns,
                     const std::vector<NewEntry>& entries) {
  std::string out;
  out.reserve(64 + entries.size() * 120);
  out.append(k_magic, sizeof k_magic);
  put_value(out, k_version);
  put_value(out, static_cast<std::uint32_t>(entries.size()));
  put_value(out, started_ns);
  for (const NewEntry& entry : entries) {
    put_value(out, static_cast<std::uint32_t>(entry.path.size()));
    out += entry.path;
    put_value(out, entry.stat.device);
    put_value(out, entry.stat.inode);
    put_value(out, entry.stat.size);
    put_value(out, entry.stat.mtime_ns);
    put_value(out, entry.stat.ctime_ns);
    put_value(out, entry.stat.mode);
    for (std::size_t i = 0; i < 32; ++i) {
      out.push_back(static_cast<char>(hex_value(entry.sha256_hex[2 * i]) * 16 +
                                      hex_value(entry.sha256_hex[2 * i + 1])));
    }
  }
  out += raw_sha256(out);
  util::write_file_replace(file, out, 0644);
}

}  // namespace amlrun::snapshot
