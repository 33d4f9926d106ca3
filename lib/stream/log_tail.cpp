#include "lib/stream/log_tail.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include "lib/util/error.hpp"
#include "lib/util/safe_dir.hpp"
#include "lib/util/strings.hpp"
#include "lib/util/time.hpp"
#include "lib/util/utf8.hpp"

namespace amlrun::stream {

namespace fs = std::filesystem;

LogTail::LogTail(std::vector<fs::path> roots, std::string relative_dir, std::string name)
    : m_roots(std::move(roots)), m_relative_dir(std::move(relative_dir)), m_name(std::move(name)) {}

std::vector<std::string> LogTail::new_lines() {
  std::vector<std::string> lines;
  if (!m_fd) {
    for (const fs::path& root : m_roots) {
      try {
        auto dir = util::SafeDir::open(root).find_dir(m_relative_dir);
        if (!dir) continue;
        m_fd = dir->try_open_file(m_name, O_RDONLY);
        if (m_fd) break;
      } catch (const util::Error&) {
        // Not there (yet), or a link in the way: nothing to show.
      }
    }
    if (!m_fd) return lines;
  }
  char buffer[65536];
  ssize_t n;
  while ((n = ::read(m_fd.get(), buffer, sizeof buffer)) > 0) {
    m_partial.append(buffer, static_cast<std::size_t>(n));
  }
  std::size_t start = 0;
  for (std::size_t newline; (newline = m_partial.find('\n', start)) != std::string::npos;
       start = newline + 1) {
    lines.push_back(m_partial.substr(start, newline - start));
  }
  m_partial.erase(0, start);
  return lines;
}

std::string preparing_status(const std::string& run_id, double seconds,
                             const std::string& last_line, std::size_t width) {
  std::string line = fmt::format("amlrun: {} building the environment ({})", run_id,
                                 util::format_duration(seconds));
  if (!last_line.empty()) line += ": " + util::escape_control(last_line);
  // Cut by code points so the status never wraps (it is redrawn with '\r').
  std::size_t limit = width > 1 ? width - 1 : 1;
  std::size_t columns = 0;
  for (std::size_t at = 0; at < line.size();) {
    char32_t code;
    std::size_t length = util::utf8_sequence(line, at, code);
    if (length == 0) length = 1;
    if (++columns > limit) {
      line.resize(at);
      break;
    }
    at += length;
  }
  return line;
}

}  // namespace amlrun::stream
