#pragma once
// How a run's log bytes are shown. Off a terminal (a pipe, a file) they pass
// through as written: byte-exact for one rank, split into "[rank N] " lines
// for several. On a terminal a line the job rewrites with '\r' (a progress
// bar, the worker's live line) is shown updating in place: one live line at
// the bottom, redrawn with "\r\033[K", and only its last version is kept
// when the job ends the line. Pure text in, text out, so it is tested
// without a terminal.
#include <cstddef>
#include <map>
#include <string>
#include <string_view>

namespace amlrun::stream {

struct RenderOptions {
  bool terminal = false;      // draw '\r' lines in place
  bool prefix_ranks = false;  // "[rank N] " before each line
  std::size_t width = 80;     // the terminal's columns (a live line is cut to fit, else it wraps)
};

class LogRenderer {
 public:
  explicit LogRenderer(RenderOptions options) : m_options(options) {}

  // The bytes to write for `data` read from `rank`'s log.
  std::string add(int rank, std::string_view data);
  // What lines of `source` start with instead of "[rank N] " (a sweep's
  // trials: "[trial 3] "); with prefix_ranks only.
  void set_prefix(int source, std::string prefix) { m_prefixes[source] = std::move(prefix); }
  // Takes the live line off the screen (before amlrun writes a line of its
  // own to the same terminal); "" when none is shown.
  std::string hide();
  // Draws the live line again after hide(); "" when there is none.
  std::string show();
  // Everything still held, each unfinished line ended: at the end of a run
  // or on detaching.
  std::string finish();

 private:
  struct Line {
    std::string text;         // the unfinished line (terminal: its latest version)
    bool pending_cr = false;  // ended in '\r': "\r\n" or a rewrite, not known yet
  };
  std::string prefix(int rank) const;
  std::string add_plain(int rank, std::string_view data);
  std::string add_terminal(int rank, std::string_view data);
  std::string draw_live();
  std::string fit(std::string text) const;

  RenderOptions m_options;
  std::map<int, std::string> m_prefixes;
  std::map<int, Line> m_lines;
  int m_live_rank = -1;  // whose unfinished line is drawn at the bottom
  bool m_live_shown = false;
};

}  // namespace amlrun::stream
