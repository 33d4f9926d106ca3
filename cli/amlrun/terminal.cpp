#include "cli/amlrun/terminal.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "lib/util/strings.hpp"

namespace amlrun::cli {

bool is_terminal(int fd) {
  return ::isatty(fd) == 1;
}

int terminal_width(int fd) {
  struct winsize size {};
  if (::ioctl(fd, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  if (const char* columns = std::getenv("COLUMNS")) {
    int value = std::atoi(columns);
    if (value > 0) return value;
  }
  return 80;
}

bool use_color(int fd) {
  if (!is_terminal(fd) || std::getenv("NO_COLOR")) return false;
  const char* term = std::getenv("TERM");
  return !term || std::strcmp(term, "dumb") != 0;
}

std::size_t display_width(const std::string& text) {
  std::size_t width = 0;
  for (unsigned char c : text) width += (c & 0xC0) != 0x80;  // count lead bytes only
  return width;
}

std::string truncate_to_width(const std::string& text, std::size_t width) {
  if (display_width(text) <= width) return text;
  if (width == 0) return "";
  std::string out;
  std::size_t shown = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if ((c & 0xC0) != 0x80) {
      if (shown == width - 1) break;
      ++shown;
    }
    out.push_back(text[i]);
  }
  return out + "…";
}

std::string Table::render(std::size_t max_width, std::size_t indent) const {
  std::size_t columns = m_headers.size();
  // Cells hold stored text (names, tags, file names): control characters
  // are shown escaped, so no cell can break its row or command the terminal.
  std::vector<std::vector<std::string>> rows;
  rows.reserve(m_rows.size());
  for (const auto& row : m_rows) {
    rows.emplace_back();
    for (const auto& cell : row) rows.back().push_back(util::escape_control(cell));
  }
  std::vector<std::size_t> widths(columns, 0);
  for (std::size_t c = 0; c < columns; ++c) widths[c] = display_width(m_headers[c]);
  for (const auto& row : rows) {
    for (std::size_t c = 0; c < columns && c < row.size(); ++c) {
      widths[c] = std::max(widths[c], display_width(row[c]));
    }
  }
  if (m_flexible >= 0) {
    std::size_t total = indent + 2 * (columns - 1);
    for (std::size_t w : widths) total += w;
    auto& flexible = widths[static_cast<std::size_t>(m_flexible)];
    std::size_t floor = std::min<std::size_t>(flexible, 8);
    if (total > max_width)
      flexible = std::max(floor, flexible - std::min(flexible, total - max_width));
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out(indent, ' ');
    for (std::size_t c = 0; c < columns; ++c) {
      std::string cell = c < cells.size() ? truncate_to_width(cells[c], widths[c]) : "";
      std::size_t pad = widths[c] - display_width(cell);
      bool right = std::find(m_right.begin(), m_right.end(), c) != m_right.end();
      bool last = c + 1 == columns;
      if (right) out.append(pad, ' ');
      out += cell;
      if (!right && !last) out.append(pad, ' ');
      if (!last) out += "  ";
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out + "\n";
  };
  std::string out = line(m_headers);
  for (const auto& row : rows) out += line(row);
  return out;
}

}  // namespace amlrun::cli
