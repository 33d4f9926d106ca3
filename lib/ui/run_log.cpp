#include "lib/ui/run_log.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/store/run_layout.hpp"
#include "lib/util/safe_dir.hpp"

namespace amlrun::ui {

util::UniqueFd open_rank_log(const std::vector<std::filesystem::path>& roots, int rank) {
  for (const auto& root : roots) {
    try {
      auto run = util::SafeDir::open(root);
      auto logs = run.find_dir(store::RunTree::relative_user_logs());
      if (!logs) continue;
      auto fd = logs->try_open_file(store::RunTree::rank_log_name(rank), O_RDONLY);
      if (static_cast<bool>(fd)) return fd;
    } catch (const util::Error&) {
      // A root that is gone (collected, moved) or a link in the way: the
      // next root, or no log.
    }
  }
  return {};
}

namespace {

// Bytes before the end that belong to an unfinished UTF-8 sequence (its
// rest has not been written yet): left for the next read.
std::size_t unfinished_tail(const std::string& bytes) {
  std::size_t n = bytes.size();
  for (std::size_t back = 1; back <= 3 && back <= n; ++back) {
    unsigned char c = static_cast<unsigned char>(bytes[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // a continuation byte: look further back
    std::size_t need = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
    return need > back ? back : 0;
  }
  return 0;
}

}  // namespace

LogPiece read_rank_log(const std::vector<std::filesystem::path>& roots, int rank,
                       std::uint64_t offset, std::size_t max_bytes) {
  LogPiece piece;
  piece.offset = offset;
  util::UniqueFd fd = open_rank_log(roots, rank);
  if (!static_cast<bool>(fd)) return piece;
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0 || !S_ISREG(info.st_mode)) return piece;
  piece.found = true;
  piece.size = static_cast<std::uint64_t>(info.st_size);
  if (offset >= piece.size) return piece;
  std::size_t wanted =
      static_cast<std::size_t>(std::min<std::uint64_t>(max_bytes, piece.size - offset));
  piece.bytes.resize(wanted);
  std::size_t got = 0;
  while (got < wanted) {
    ssize_t n =
        ::pread(fd.get(), piece.bytes.data() + got, wanted - got, static_cast<off_t>(offset + got));
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  piece.bytes.resize(got);
  // A sequence cut by the end of what was asked is read again next time;
  // one cut by the end of the file waits for the rest of its bytes.
  piece.bytes.resize(got - unfinished_tail(piece.bytes));
  return piece;
}

std::uint64_t tail_offset(const std::vector<std::filesystem::path>& roots, int rank,
                          std::uint64_t size, std::size_t max_bytes) {
  if (size <= max_bytes) return 0;
  std::uint64_t start = size - max_bytes;
  // The first line that starts within the first 4 KiB of the window.
  auto head = read_rank_log(roots, rank, start, 4096);
  auto newline = head.bytes.find('\n');
  return newline == std::string::npos ? start : start + newline + 1;
}

}  // namespace amlrun::ui
