#include "lib/plot/terminal_chart.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "lib/plot/axis.hpp"

namespace amlrun::plot {

namespace {

const char* const k_colors[] = {"\033[34m", "\033[33m", "\033[32m", "\033[31m",
                                "\033[35m", "\033[36m", "\033[94m", "\033[93m"};
const char* const k_reset = "\033[0m";

// Bit of the braille dot at (column 0..1, row 0..3) of a cell.
std::uint8_t braille_bit(int column, int row) {
  static const std::uint8_t bits[4][2] = {{0x01, 0x08}, {0x02, 0x10}, {0x04, 0x20}, {0x40, 0x80}};
  return bits[row][column];
}

std::string braille(std::uint8_t mask) {
  // U+2800 + mask, as UTF-8 (three bytes).
  char32_t code = 0x2800 + mask;
  std::string out;
  out += static_cast<char>(0xE0 | (code >> 12));
  out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
  out += static_cast<char>(0x80 | (code & 0x3F));
  return out;
}

class Canvas {
 public:
  Canvas(int columns, int rows)
      : m_columns(columns),
        m_rows(rows),
        m_masks(static_cast<std::size_t>(columns) * rows, 0),
        m_owner(static_cast<std::size_t>(columns) * rows, -1),
        m_marks(static_cast<std::size_t>(columns) * rows, 0) {}
  int dot_width() const { return m_columns * 2; }
  int dot_height() const { return m_rows * 4; }

  void dot(int x, int y, int series) {
    if (x < 0 || y < 0 || x >= dot_width() || y >= dot_height()) return;
    int cell = (y / 4) * m_columns + x / 2;
    m_masks[cell] |= braille_bit(x % 2, y % 4);
    m_owner[cell] = series;
  }
  void line(int x0, int y0, int x1, int y1, int series) {
    // Bresenham: every dot between the two points, so steep drops stay joined.
    int dx = std::abs(x1 - x0), sx = x0 < x1 ? 1 : -1;
    int dy = -std::abs(y1 - y0), sy = y0 < y1 ? 1 : -1;
    int error = dx + dy;
    for (;;) {
      dot(x0, y0, series);
      if (x0 == x1 && y0 == y1) return;
      int twice = 2 * error;
      if (twice >= dy) {
        error += dy;
        x0 += sx;
      }
      if (twice <= dx) {
        error += dx;
        y0 += sy;
      }
    }
  }
  void mark(int x, int y, char label) {
    if (x < 0 || y < 0 || x >= dot_width() || y >= dot_height()) return;
    m_marks[(y / 4) * m_columns + x / 2] = label;
  }
  std::string row(int r, bool color) const {
    std::string out;
    for (int c = 0; c < m_columns; ++c) {
      int cell = r * m_columns + c;
      if (m_marks[cell]) {
        out += m_marks[cell];
        continue;
      }
      if (!m_masks[cell]) {
        out += ' ';
        continue;
      }
      if (color) out += k_colors[m_owner[cell] % std::size(k_colors)];
      out += braille(m_masks[cell]);
      if (color) out += k_reset;
    }
    return out;
  }

 private:
  int m_columns, m_rows;
  std::vector<std::uint8_t> m_masks;
  std::vector<int> m_owner;  // the series drawn last in the cell gives its colour
  std::vector<char> m_marks;
};

}  // namespace

std::string render_terminal(const Panel& panel, const TerminalStyle& style) {
  std::string out =
      style.color ? fmt::format("\033[1m{}\033[0m\n", panel.title) : panel.title + "\n";
  Extent extent = extent_of(panel);
  if (extent.empty) return out + "  (no finite values to draw)\n";
  int rows = std::max(4, style.height);
  Axis y_axis = nice_axis(extent.y_min, extent.y_max, std::max(2, rows / 3 + 1));
  std::vector<std::string> y_labels;
  std::size_t margin = 0;
  for (double tick : y_axis.ticks) {
    y_labels.push_back(tick_label(tick, y_axis.tick_step));
    margin = std::max(margin, y_labels.back().size());
  }
  int columns = std::max(10, style.width - static_cast<int>(margin) - 3);
  Canvas canvas(columns, rows);
  Axis x_axis = nice_axis(extent.x_min, extent.x_max, std::max(2, columns / 12));
  auto to_x = [&](double x) {
    return static_cast<int>(
        std::lround((x - x_axis.low) / (x_axis.high - x_axis.low) * (canvas.dot_width() - 1)));
  };
  auto to_y = [&](double y) {
    return static_cast<int>(
        std::lround((y_axis.high - y) / (y_axis.high - y_axis.low) * (canvas.dot_height() - 1)));
  };
  bool numbered = !style.color && panel.series.size() > 1;
  for (std::size_t s = 0; s < panel.series.size(); ++s) {
    bool joined = false;
    int last_x = 0, last_y = 0;
    for (const auto& [x, y] : drawable_points(panel.series[s].points)) {
      if (!std::isfinite(x) || !std::isfinite(y)) {
        joined = false;  // a NaN breaks the line
        continue;
      }
      int px = to_x(x), py = to_y(y);
      if (joined) {
        canvas.line(last_x, last_y, px, py, static_cast<int>(s));
      } else {
        canvas.dot(px, py, static_cast<int>(s));
      }
      joined = true;
      last_x = px;
      last_y = py;
    }
    if (numbered && joined && s < 9) canvas.mark(last_x, last_y, static_cast<char>('1' + s));
  }
  // Each y tick labels the row its value falls in.
  std::vector<std::string> row_labels(rows);
  for (std::size_t i = 0; i < y_axis.ticks.size(); ++i) {
    int row = to_y(y_axis.ticks[i]) / 4;
    if (row >= 0 && row < rows && row_labels[row].empty()) row_labels[row] = y_labels[i];
  }
  for (int r = 0; r < rows; ++r) {
    out += fmt::format("{:>{}} {}{}\n", row_labels[r], margin, row_labels[r].empty() ? "│" : "┤",
                       canvas.row(r, style.color));
  }
  out += std::string(margin + 1, ' ') + "└";
  for (int c = 0; c < columns; ++c) out += "─";
  out += "\n";
  // Step labels under their columns, skipping any that would touch the last.
  std::string x_line(margin + 2 + columns + 16, ' ');
  std::size_t free_from = 0;
  for (double tick : x_axis.ticks) {
    std::string label = tick_label(tick, x_axis.tick_step);
    std::size_t center = margin + 2 + static_cast<std::size_t>(to_x(tick) / 2);
    std::size_t start = center >= label.size() / 2 ? center - label.size() / 2 : 0;
    if (start < free_from || start + label.size() > x_line.size()) continue;
    x_line.replace(start, label.size(), label);
    free_from = start + label.size() + 1;
  }
  while (!x_line.empty() && x_line.back() == ' ') x_line.pop_back();
  out += x_line + "\n";
  std::string x_name = panel.x_label;
  std::size_t center = margin + 2 + static_cast<std::size_t>(columns) / 2;
  out +=
      std::string(center > x_name.size() / 2 ? center - x_name.size() / 2 : 0, ' ') + x_name + "\n";
  for (std::size_t s = 0; s < panel.series.size(); ++s) {
    std::string key = numbered && s < 9 ? fmt::format("{}", s + 1) : "━━";
    if (style.color) key = fmt::format("{}━━{}", k_colors[s % std::size(k_colors)], k_reset);
    out += fmt::format("{:{}}{} {}\n", "", margin + 2, key, panel.series[s].label);
  }
  if (extent.clipped) out += fmt::format("{:{}}({})\n", "", margin + 2, clipped_note());
  return out;
}

}  // namespace amlrun::plot
