#include "lib/stream/log_render.hpp"

#include <fmt/format.h>

#include "lib/util/utf8.hpp"

namespace amlrun::stream {

namespace {

constexpr std::string_view k_clear = "\r\033[K";
constexpr std::string_view k_erase = "\033[K";  // what '\r' writers put after it

// A rewrite often starts by erasing the old line itself; ours already does.
std::string_view without_erase(std::string_view text) {
  while (text.substr(0, k_erase.size()) == k_erase) text.remove_prefix(k_erase.size());
  return text;
}

}  // namespace

std::string LogRenderer::prefix(int rank) const {
  if (!m_options.prefix_ranks) return std::string();
  auto custom = m_prefixes.find(rank);
  return custom != m_prefixes.end() ? custom->second : fmt::format("[rank {}] ", rank);
}

std::string LogRenderer::add(int rank, std::string_view data) {
  return m_options.terminal ? add_terminal(rank, data) : add_plain(rank, data);
}

std::string LogRenderer::add_plain(int rank, std::string_view data) {
  if (!m_options.prefix_ranks) return std::string(data);
  Line& line = m_lines[rank];
  line.text.append(data);
  std::string out;
  std::size_t start = 0;
  for (std::size_t newline; (newline = line.text.find('\n', start)) != std::string::npos;
       start = newline + 1) {
    out += prefix(rank);
    out.append(line.text, start, newline + 1 - start);
  }
  line.text.erase(0, start);
  return out;
}

std::string LogRenderer::add_terminal(int rank, std::string_view data) {
  Line& line = m_lines[rank];
  std::string out;
  bool changed = false;
  for (char c : data) {
    if (line.pending_cr) {
      line.pending_cr = false;
      // "\r\n" ends the line as written; '\r' then text starts it again.
      if (c != '\n') {
        line.text.clear();
      }
    }
    if (c == '\n') {
      if (m_live_shown) out += k_clear;
      m_live_shown = false;
      out += prefix(rank);
      out += without_erase(line.text);
      out += '\n';
      line.text.clear();
      changed = true;
    } else if (c == '\r') {
      line.pending_cr = true;
    } else {
      line.text += c;
      changed = true;
    }
  }
  if (!changed) return out;
  // The unfinished line that changed last is the one at the bottom; when
  // this rank has none, another rank's goes back there.
  if (!line.text.empty()) {
    m_live_rank = rank;
  } else if (m_live_rank == rank || m_live_rank < 0) {
    m_live_rank = -1;
    for (const auto& [other, other_line] : m_lines) {
      if (!other_line.text.empty()) m_live_rank = other;
    }
  }
  // A finished line above the live line pushed it down: draw it again.
  out += draw_live();
  return out;
}

std::string LogRenderer::fit(std::string text) const {
  // One column per code point (as the rest of amlrun's output); a line that
  // wrapped could not be redrawn in place.
  std::size_t limit = m_options.width > 1 ? m_options.width - 1 : 1;
  std::size_t columns = 0;
  for (std::size_t at = 0; at < text.size();) {
    char32_t code;
    std::size_t length = util::utf8_sequence(text, at, code);
    if (length == 0) length = 1;
    if (++columns > limit) {
      text.resize(at);
      break;
    }
    at += length;
  }
  return text;
}

std::string LogRenderer::draw_live() {
  std::string out;
  if (m_live_shown) out += k_clear;
  m_live_shown = false;
  if (m_live_rank < 0) return out;
  std::string_view text = without_erase(m_lines[m_live_rank].text);
  if (text.empty()) return out;
  out += fit(prefix(m_live_rank) + std::string(text));
  m_live_shown = true;
  return out;
}

std::string LogRenderer::hide() {
  if (!m_live_shown) return {};
  m_live_shown = false;
  return std::string(k_clear);
}

std::string LogRenderer::show() {
  if (m_live_shown) return {};
  return draw_live();
}

std::string LogRenderer::finish() {
  std::string out;
  if (!m_options.terminal) {
    for (auto& [rank, line] : m_lines) {
      if (m_options.prefix_ranks && !line.text.empty()) {
        out += prefix(rank) + line.text + "\n";
      }
      line.text.clear();
    }
    return out;
  }
  out += hide();
  for (auto& [rank, line] : m_lines) {
    std::string_view text = without_erase(line.text);
    if (!text.empty()) out += prefix(rank) + std::string(text) + "\n";
    line = Line{};
  }
  m_live_rank = -1;
  return out;
}

}  // namespace amlrun::stream
