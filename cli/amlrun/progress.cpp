#include "cli/amlrun/progress.hpp"

#include <unistd.h>

#include <fmt/format.h>
#include <algorithm>

#include "cli/amlrun/terminal.hpp"
#include "lib/util/strings.hpp"
#include "lib/util/time.hpp"

namespace amlrun::cli {

namespace {

constexpr std::int64_t k_redraw_ms = 100;       // the bar
constexpr std::int64_t k_plain_line_ms = 5000;  // lines in logs

void write_text(int fd, const std::string& text) {
  ssize_t ignored = ::write(fd, text.data(), text.size());
  (void)ignored;
}

}  // namespace

std::string format_rate(double bytes_per_second) {
  return util::format_bytes(static_cast<std::uint64_t>(std::max(0.0, bytes_per_second))) + "/s";
}

ProgressPrinter::ProgressPrinter(std::string what, int fd)
    : m_what(std::move(what)),
      m_fd(fd),
      m_terminal(is_terminal(fd)),
      m_start_ms(util::monotonic_ms()) {
  m_next_ms = m_start_ms + (m_terminal ? k_redraw_ms : k_plain_line_ms);
}

double ProgressPrinter::elapsed_seconds() const {
  return static_cast<double>(util::monotonic_ms() - m_start_ms) / 1000.0;
}

void ProgressPrinter::update(const artifacts::CopyProgress& p) {
  m_last = p;
  std::int64_t now = util::monotonic_ms();
  if (now < m_next_ms) return;
  m_next_ms = now + (m_terminal ? k_redraw_ms : k_plain_line_ms);
  draw(p, now);
}

void ProgressPrinter::draw(const artifacts::CopyProgress& p, std::int64_t now) {
  double seconds = std::max(0.001, static_cast<double>(now - m_start_ms) / 1000.0);
  double rate = static_cast<double>(p.bytes_done) / seconds;
  double fraction =
      p.bytes_total
          ? std::min(1.0, static_cast<double>(p.bytes_done) / static_cast<double>(p.bytes_total))
          : 1.0;
  std::string eta =
      rate > 0 && p.bytes_total > p.bytes_done
          ? util::format_duration(static_cast<double>(p.bytes_total - p.bytes_done) / rate)
          : "0s";
  std::string numbers = fmt::format("{} / {}  {}  ETA {}", util::format_bytes(p.bytes_done),
                                    util::format_bytes(p.bytes_total), format_rate(rate), eta);
  if (!m_terminal) {
    write_text(m_fd, fmt::format("amlrun: {}: {:.0f}% ({} of {} files), {}\n", m_what,
                                 fraction * 100, p.files_done, p.files_total, numbers));
    return;
  }
  int width = terminal_width(m_fd);
  int bar = std::max(10, std::min(40, width - static_cast<int>(numbers.size()) - 10));
  int filled = static_cast<int>(fraction * bar);
  std::string line = fmt::format("{:3.0f}% [{}{}] {}", fraction * 100, std::string(filled, '#'),
                                 std::string(bar - filled, ' '), numbers);
  write_text(m_fd, "\r\033[K" + truncate_to_width(line, static_cast<std::size_t>(width - 1)));
}

void ProgressPrinter::finish() {
  if (!m_terminal) return;
  draw(m_last, util::monotonic_ms());
  write_text(m_fd, "\n");
}

}  // namespace amlrun::cli
