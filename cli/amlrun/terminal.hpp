#pragma once
// What the terminal can show: width, colour, and a table that fits it.
// Printing only; no logic of amlrun's own lives here.
#include <string>
#include <vector>

namespace amlrun::cli {

bool is_terminal(int fd);
// Columns of the terminal on `fd`; else $COLUMNS; else 80 (pipes, files).
int terminal_width(int fd);
// Colour only on a terminal, and never with NO_COLOR set or TERM=dumb.
bool use_color(int fd);

// Display width of UTF-8 text (one column per code point; amlrun prints no
// wide characters).
std::size_t display_width(const std::string& text);
// Cuts text to `width` columns, ending with "…" when something was cut.
std::string truncate_to_width(const std::string& text, std::size_t width);

// A plain text table: left-aligned columns two spaces apart, headers in
// capitals. One column may be marked flexible: it is cut to make the table
// fit `max_width`. Control characters in cells are shown escaped
// (util::escape_control).
class Table {
 public:
  explicit Table(std::vector<std::string> headers) : m_headers(std::move(headers)) {}
  void right_align(std::size_t column) { m_right.push_back(column); }
  void flexible(std::size_t column) { m_flexible = static_cast<int>(column); }
  void add(std::vector<std::string> row) { m_rows.push_back(std::move(row)); }
  bool empty() const { return m_rows.empty(); }
  // The table, each line ending in '\n'; `indent` spaces before each line.
  std::string render(std::size_t max_width, std::size_t indent = 0) const;

 private:
  std::vector<std::string> m_headers;
  std::vector<std::vector<std::string>> m_rows;
  std::vector<std::size_t> m_right;
  int m_flexible = -1;
};

}  // namespace amlrun::cli
