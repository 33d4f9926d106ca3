#include "lib/util/strings.hpp"

#include <fmt/format.h>
#include <algorithm>

#include "lib/util/utf8.hpp"

namespace amlrun::util {

// Optimal string alignment distance: Levenshtein plus adjacent transpositions,
// so "tpye" is one edit from "type", as a person would count it.
std::size_t edit_distance(std::string_view a, std::string_view b) {
  const std::size_t columns = b.size() + 1;
  std::vector<std::size_t> d((a.size() + 1) * columns);
  auto at = [&](std::size_t i, std::size_t j) -> std::size_t& { return d[i * columns + j]; };
  for (std::size_t i = 0; i <= a.size(); ++i) at(i, 0) = i;
  for (std::size_t j = 0; j <= b.size(); ++j) at(0, j) = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      at(i, j) = std::min({at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        at(i, j) = std::min(at(i, j), at(i - 2, j - 2) + 1);
      }
    }
  }
  return at(a.size(), b.size());
}

std::optional<std::string> closest_match(std::string_view word,
                                         const std::vector<std::string>& candidates) {
  // A candidate scores its edit distance, or, for a word typed as the start
  // of a longer key ('proces_count' for 'process_count_per_instance'), the
  // distance to that key's prefix plus one.
  std::optional<std::string> best;
  std::size_t best_score = 0;
  std::size_t best_full = 0;
  for (const auto& candidate : candidates) {
    std::size_t full = edit_distance(word, candidate);
    std::size_t score = full;
    if (word.size() >= 4 && candidate.size() > word.size()) {
      std::size_t prefix = edit_distance(word, std::string_view(candidate).substr(0, word.size()));
      score = std::min(score, prefix + 1);
    }
    if (!best || score < best_score || (score == best_score && full < best_full)) {
      best = candidate;
      best_score = score;
      best_full = full;
    }
  }
  if (!best) return std::nullopt;
  std::size_t limit = std::max<std::size_t>(1, word.size() / 3);
  if (best_score <= limit) return best;
  return std::nullopt;
}

std::string did_you_mean_suffix(std::string_view word, const std::vector<std::string>& candidates) {
  auto match = closest_match(word, candidates);
  if (!match) return "";
  return fmt::format(" (did you mean '{}'?)", *match);
}

std::vector<std::string> split(std::string_view text, char separator) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (;;) {
    std::size_t end = text.find(separator, start);
    if (end == std::string_view::npos) {
      parts.emplace_back(text.substr(start));
      return parts;
    }
    parts.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
}

std::string join(const std::vector<std::string>& parts, std::string_view separator) {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += separator;
    out += parts[i];
  }
  return out;
}

std::string_view trim(std::string_view text) {
  const char* space = " \t\r\n";
  std::size_t begin = text.find_first_not_of(space);
  if (begin == std::string_view::npos) return {};
  std::size_t end = text.find_last_not_of(space);
  return text.substr(begin, end - begin + 1);
}

std::string format_bytes(std::uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024.0 && unit < 4) {
    value /= 1024.0;
    ++unit;
  }
  if (unit == 0) return fmt::format("{} B", bytes);
  return fmt::format("{:.1f} {}", value, units[unit]);
}

namespace {

// Appends `text` with what a terminal would act on or hide written as
// escapes: C0 controls and DEL ("\n", "\t", "\r", "\x1b"), C1 controls
// ("\u009b", which some terminals read as ESC [) and bytes that are not
// UTF-8 ("\xff"). At most `max_characters` characters are taken; returns
// whether all were.
bool append_escaped(std::string& out, std::string_view text, std::size_t max_characters,
                    bool escape_quote) {
  std::size_t shown = 0;
  std::size_t at = 0;
  while (at < text.size()) {
    if (shown >= max_characters) return false;
    ++shown;
    char32_t code = 0;
    std::size_t length = utf8_sequence(text, at, code);
    if (length == 0) {
      out += fmt::format("\\x{:02x}", static_cast<unsigned char>(text[at]));
      ++at;
      continue;
    }
    if (code == '\n') {
      out += "\\n";
    } else if (code == '\t') {
      out += "\\t";
    } else if (code == '\r') {
      out += "\\r";
    } else if (code == '\'' && escape_quote) {
      out += "\\'";
    } else if (code < 0x20 || code == 0x7f) {
      out += fmt::format("\\x{:02x}", static_cast<unsigned>(code));
    } else if (code >= 0x80 && code <= 0x9f) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned>(code));
    } else {
      out.append(text.substr(at, length));
    }
    at += length;
  }
  return true;
}

}  // namespace

std::string printable(std::string_view text, std::size_t max_length) {
  std::string out = "'";
  if (!append_escaped(out, text, max_length, /*escape_quote=*/true)) out += "...";
  out += "'";
  return out;
}

std::string escape_control(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  append_escaped(out, text, std::string_view::npos, /*escape_quote=*/false);
  return out;
}

}  // namespace amlrun::util
