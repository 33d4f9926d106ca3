#include "lib/snapshot/ignore.hpp"

#include <utility>

namespace amlrun::snapshot {

namespace {

// Outcomes of matching the rest of a pattern. The two "stop" outcomes prune
// the backtracking of '*' (without them a pattern like "*a*a*a*a*b" is
// exponential): once the text is used up no longer match of an earlier '*'
// can help, and once a '*' that stays inside one directory meets a '/', only
// an enclosing "**" can still make progress.
enum class Outcome { match, no_match, stop_all, stop_to_double_star };

bool is_glob_special(char c) {
  return c == '*' || c == '?' || c == '[' || c == '\\';
}

// POSIX character class names inside brackets ("[[:digit:]]"), ASCII only,
// as git has them (its ctype does not depend on the locale).
std::optional<bool> in_named_class(std::string_view name, unsigned char c) {
  bool upper = c >= 'A' && c <= 'Z';
  bool lower = c >= 'a' && c <= 'z';
  bool digit = c >= '0' && c <= '9';
  bool print = c >= 0x20 && c < 0x7f;
  if (name == "alnum") return upper || lower || digit;
  if (name == "alpha") return upper || lower;
  if (name == "blank") return c == ' ' || c == '\t';
  if (name == "cntrl") return c < 0x20 || c == 0x7f;
  if (name == "digit") return digit;
  if (name == "graph") return print && c != ' ';
  if (name == "lower") return lower;
  if (name == "print") return print;
  if (name == "punct") return print && c != ' ' && !upper && !lower && !digit;
  if (name == "space") return c == ' ' || (c >= '\t' && c <= '\r');
  if (name == "upper") return upper;
  if (name == "xdigit") return digit || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  return std::nullopt;  // an unknown name makes the whole pattern fail
}

// Matches the bracket expression that starts at pattern[open] == '[' against
// c. Returns the index of its closing ']' and whether c is in the set, or
// nullopt when the expression is malformed (never closed, unknown class).
struct ClassResult {
  std::size_t close;
  bool member;
};
std::optional<ClassResult> match_bracket(std::string_view pattern, std::size_t open,
                                         unsigned char c) {
  std::size_t p = open + 1;
  bool negated = false;
  if (p < pattern.size() && (pattern[p] == '!' || pattern[p] == '^')) {
    negated = true;
    ++p;
  }
  bool member = false;
  // The previous single character, the start of a possible range; 0 after a
  // range or a named class, where a following '-' is literal.
  unsigned char previous = 0;
  // The first character is always part of the set, even ']' ("[]a]").
  bool first = true;
  for (;;) {
    if (p >= pattern.size()) {
      return std::nullopt;
    }
    unsigned char pc = static_cast<unsigned char>(pattern[p]);
    if (pc == ']' && !first) {
      break;
    }
    first = false;
    if (pc == '\\') {
      if (++p >= pattern.size()) return std::nullopt;
      pc = static_cast<unsigned char>(pattern[p]);
      member |= c == pc;
      previous = pc;
    } else if (pc == '-' && previous != 0 && p + 1 < pattern.size() && pattern[p + 1] != ']') {
      unsigned char high = static_cast<unsigned char>(pattern[++p]);
      if (high == '\\') {
        if (++p >= pattern.size()) return std::nullopt;
        high = static_cast<unsigned char>(pattern[p]);
      }
      member |= c >= previous && c <= high;
      previous = 0;
    } else if (pc == '[' && p + 1 < pattern.size() && pattern[p + 1] == ':') {
      std::size_t name_start = p + 2;
      std::size_t close = pattern.find(']', name_start);
      if (close == std::string_view::npos) return std::nullopt;
      if (close == name_start || pattern[close - 1] != ':') {
        // Not "[:name:]": the '[' is an ordinary member.
        member |= c == '[';
        previous = '[';
      } else {
        auto in_class = in_named_class(pattern.substr(name_start, close - 1 - name_start), c);
        if (!in_class) return std::nullopt;
        member |= *in_class;
        previous = 0;
        p = close;
      }
    } else {
      member |= c == pc;
      previous = pc;
    }
    ++p;
  }
  return ClassResult{p, member != negated};
}

Outcome match_from(std::string_view pattern, std::string_view text, bool pathname) {
  std::size_t p = 0;
  std::size_t t = 0;
  while (p < pattern.size()) {
    char pc = pattern[p];
    if (t == text.size() && pc != '*') {
      return Outcome::stop_all;
    }
    unsigned char tc = t < text.size() ? static_cast<unsigned char>(text[t]) : 0;
    switch (pc) {
      case '\\': {
        // A trailing backslash matches nothing.
        if (++p >= pattern.size() || static_cast<unsigned char>(pattern[p]) != tc) {
          return Outcome::no_match;
        }
        break;
      }
      case '?':
        if (pathname && tc == '/') return Outcome::no_match;
        break;
      case '[': {
        auto result = match_bracket(pattern, p, tc);
        if (!result) return Outcome::stop_all;
        if (!result->member || (pathname && tc == '/')) return Outcome::no_match;
        p = result->close;
        break;
      }
      case '*': {
        std::size_t star = p++;
        bool crosses_slash = !pathname;
        if (p < pattern.size() && pattern[p] == '*') {
          while (p < pattern.size() && pattern[p] == '*') ++p;
          // "**" is special only as a whole path segment.
          bool segment_start = star == 0 || pattern[star - 1] == '/';
          bool segment_end =
              p == pattern.size() || pattern[p] == '/' ||
              (pattern[p] == '\\' && p + 1 < pattern.size() && pattern[p + 1] == '/');
          if (pathname && segment_start && segment_end) {
            // "**/" may stand for no directory at all: "a/**/b" matches "a/b".
            if (p < pattern.size() && pattern[p] == '/' &&
                match_from(pattern.substr(p + 1), text.substr(t), pathname) == Outcome::match) {
              return Outcome::match;
            }
            crosses_slash = true;
          }
        }
        if (p == pattern.size()) {
          // A trailing '*' takes the rest of the current name, "**" everything.
          if (!crosses_slash && text.find('/', t) != std::string_view::npos) {
            return Outcome::no_match;
          }
          return Outcome::match;
        }
        if (!crosses_slash && pattern[p] == '/') {
          // "*/": the star takes exactly the rest of this path segment.
          std::size_t slash = text.find('/', t);
          if (slash == std::string_view::npos) return Outcome::no_match;
          t = slash;
          break;  // the '/' is matched by the main loop
        }
        for (;;) {
          if (t == text.size()) break;
          if (!is_glob_special(pattern[p])) {
            // Skip straight to the next place the following literal occurs.
            while (t < text.size() && (crosses_slash || text[t] != '/') && text[t] != pattern[p]) {
              ++t;
            }
            if (t == text.size() || text[t] != pattern[p]) return Outcome::no_match;
          }
          Outcome rest = match_from(pattern.substr(p), text.substr(t), pathname);
          if (rest != Outcome::no_match) {
            if (!crosses_slash || rest != Outcome::stop_to_double_star) return rest;
          } else if (!crosses_slash && text[t] == '/') {
            return Outcome::stop_to_double_star;
          }
          ++t;
        }
        return Outcome::stop_all;
      }
      default:
        if (static_cast<unsigned char>(pc) != tc) return Outcome::no_match;
        break;
    }
    ++p;
    ++t;
  }
  return t == text.size() ? Outcome::match : Outcome::no_match;
}

// Length of the leading part of a pattern without glob characters.
std::size_t literal_prefix_length(std::string_view pattern) {
  std::size_t i = 0;
  while (i < pattern.size() && !is_glob_special(pattern[i])) ++i;
  return i;
}

// git removes trailing spaces unless the last one is escaped with '\'.
std::string_view trim_trailing_spaces(std::string_view line) {
  std::size_t end = line.size();
  std::size_t keep = 0;  // end of the last non-space (or escaped) character
  for (std::size_t i = 0; i < end; ++i) {
    if (line[i] == '\\' && i + 1 < end) {
      ++i;
      keep = i + 1;
    } else if (line[i] != ' ') {
      keep = i + 1;
    }
  }
  return line.substr(0, keep);
}

}  // namespace

bool glob_match(std::string_view pattern, std::string_view text, bool pathname) {
  return match_from(pattern, text, pathname) == Outcome::match;
}

IgnoreFile::IgnoreFile(std::string base, std::string_view text) : m_base(std::move(base)) {
  if (!m_base.empty()) {
    m_base += '/';
  }
  if (text.starts_with("\xEF\xBB\xBF")) {  // a UTF-8 byte order mark
    text.remove_prefix(3);
  }
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    if (line.empty() || line[0] == '#') {
      continue;
    }
    if (line.back() == '\r') {  // files written on Windows
      line.remove_suffix(1);
    }
    line = trim_trailing_spaces(line);
    Pattern pattern;
    if (!line.empty() && line[0] == '!') {
      pattern.negated = true;
      line.remove_prefix(1);
    }
    if (!line.empty() && line.back() == '/') {
      pattern.directory_only = true;
      line.remove_suffix(1);
    }
    if (line.empty()) {
      continue;  // matches nothing
    }
    // A slash anywhere but at the end anchors the pattern to this directory.
    pattern.basename_only = line.find('/') == std::string_view::npos;
    if (line[0] == '/') {
      line.remove_prefix(1);
    }
    pattern.glob = std::string(line);
    m_patterns.push_back(std::move(pattern));
  }
}

std::optional<bool> IgnoreFile::match(std::string_view path, bool is_dir) const {
  if (!path.starts_with(m_base) || path.size() == m_base.size()) {
    return std::nullopt;
  }
  std::string_view relative = path.substr(m_base.size());
  std::size_t slash = path.rfind('/');
  std::string_view basename = slash == std::string_view::npos ? path : path.substr(slash + 1);
  for (auto it = m_patterns.rbegin(); it != m_patterns.rend(); ++it) {
    const Pattern& pattern = *it;
    if (pattern.directory_only && !is_dir) {
      continue;
    }
    bool matched;
    if (pattern.basename_only) {
      matched = glob_match(pattern.glob, basename, /*pathname=*/false);
    } else {
      // git compares the literal head of an anchored pattern first and globs
      // only the rest; a "**" right after that head therefore counts as a
      // whole segment ("foo**/bar" matches "foox/y/bar"), so do the same.
      std::size_t head = literal_prefix_length(pattern.glob);
      matched = relative.substr(0, head) == std::string_view(pattern.glob).substr(0, head) &&
                glob_match(std::string_view(pattern.glob).substr(head), relative.substr(head),
                           /*pathname=*/true);
    }
    if (matched) {
      return !pattern.negated;
    }
  }
  return std::nullopt;
}

IgnoreChain::IgnoreChain(std::shared_ptr<const IgnoreChain> parent, IgnoreFile file)
    : m_parent(std::move(parent)), m_file(std::move(file)) {}

bool IgnoreChain::is_ignored(std::string_view path, bool is_dir) const {
  for (const IgnoreChain* chain = this; chain != nullptr; chain = chain->m_parent.get()) {
    if (chain->m_file) {
      if (auto verdict = chain->m_file->match(path, is_dir)) {
        return *verdict;
      }
    }
  }
  return false;
}

}  // namespace amlrun::snapshot
