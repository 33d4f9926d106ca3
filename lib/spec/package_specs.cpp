#include "lib/spec/package_specs.hpp"

#include <fmt/format.h>
#include <cctype>

#include "lib/util/strings.hpp"

namespace amlrun::spec {

namespace {

bool has_control_character(std::string_view text, std::string& error) {
  for (unsigned char c : text) {
    if (c < 0x20 || c == 0x7f) {
      error = fmt::format(
          "contains a control character ({}); a package specification is one "
          "line of text",
          c == '\n'   ? "a newline"
          : c == '\t' ? "a tab"
                      : fmt::format("0x{:02x}", c));
      return true;
    }
  }
  return false;
}

bool is_name_start(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0;
}
bool is_name_char(char c) {
  return is_name_start(c) || c == '-' || c == '_' || c == '.';
}

std::string normalise_name(std::string_view name) {
  std::string out;
  bool separator = false;
  for (char c : name) {
    if (c == '-' || c == '_' || c == '.') {
      separator = true;
      continue;
    }
    if (separator && !out.empty()) out.push_back('-');
    separator = false;
    out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  return out;
}

bool is_version_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '*' || c == '+' ||
         c == '!' || c == '-' || c == '_';
}

// What both kinds share: one line of text, not empty, not an option.
// Returns the trimmed text, or nullopt with `error` set.
std::optional<std::string_view> precheck(std::string_view text, std::string_view option_advice,
                                         std::string& error) {
  if (has_control_character(text, error)) return std::nullopt;
  std::string_view s = util::trim(text);
  if (s.empty()) {
    error = "is empty";
    return std::nullopt;
  }
  if (s[0] == '-') {
    error = std::string(option_advice);
    return std::nullopt;
  }
  return s;
}

}  // namespace

std::optional<std::string> normalise_pip_requirement(std::string_view text, std::string& error) {
  auto checked = precheck(text,
                          "is a pip option, not a requirement; set indexes and other options in "
                          "pip.conf or PIP_* environment variables (amlrun passes them to pip)",
                          error);
  if (!checked) return std::nullopt;
  std::string_view s = *checked;
  std::size_t i = 0;
  if (!is_name_start(s[0])) {
    error = "must start with a package name";
    return std::nullopt;
  }
  while (i < s.size() && is_name_char(s[i])) ++i;
  if (!is_name_start(s[i - 1])) {
    error = fmt::format("the package name '{}' must end with a letter or digit", s.substr(0, i));
    return std::nullopt;
  }
  std::string out = normalise_name(s.substr(0, i));
  auto skip_spaces = [&] {
    while (i < s.size() && s[i] == ' ') ++i;
  };
  skip_spaces();
  if (i < s.size() && s[i] == '[') {  // extras
    std::size_t close = s.find(']', i);
    if (close == std::string_view::npos) {
      error = "has '[' without a closing ']'";
      return std::nullopt;
    }
    std::string extras;
    for (const auto& extra : util::split(s.substr(i + 1, close - i - 1), ',')) {
      std::string_view e = util::trim(extra);
      if (e.empty() || !is_name_start(e[0])) {
        error = fmt::format("has an invalid extra '{}'", e);
        return std::nullopt;
      }
      for (char c : e) {
        if (!is_name_char(c)) {
          error = fmt::format("has an invalid extra '{}'", e);
          return std::nullopt;
        }
      }
      extras += (extras.empty() ? "" : ",") + normalise_name(e);
    }
    out += "[" + extras + "]";
    i = close + 1;
    skip_spaces();
  }
  if (i < s.size() && s[i] == '@') {  // a direct reference: name @ URL [; marker]
    ++i;
    skip_spaces();
    std::size_t end = s.find(';', i);
    std::string_view url = util::trim(s.substr(i, end == std::string_view::npos ? end : end - i));
    if (url.find("://") == std::string_view::npos || url.find(' ') != std::string_view::npos) {
      error = fmt::format("has an invalid URL '{}' after '@'", url);
      return std::nullopt;
    }
    out += " @ " + std::string(url);
    i = end == std::string_view::npos ? s.size() : end;
  } else {
    // Version specifiers: (op version) separated by commas, maybe in parentheses.
    bool parenthesised = i < s.size() && s[i] == '(';
    if (parenthesised) ++i;
    std::string specifiers;
    while (i < s.size() && s[i] != ';' && s[i] != ')') {
      skip_spaces();
      static const char* operators[] = {"===", "~=", "==", "!=", "<=", ">=", "<", ">"};
      std::string op;
      for (const char* candidate : operators) {
        if (s.substr(i).starts_with(candidate)) {
          op = candidate;
          break;
        }
      }
      if (op.empty()) {
        error = fmt::format("has '{}' where a version specifier (==, >=, ~=, ...) belongs",
                            util::trim(s.substr(i)));
        return std::nullopt;
      }
      i += op.size();
      skip_spaces();
      std::size_t start = i;
      while (i < s.size() && is_version_char(s[i])) ++i;
      if (i == start) {
        error = fmt::format("has no version after '{}'", op);
        return std::nullopt;
      }
      specifiers += (specifiers.empty() ? "" : ",") + op + std::string(s.substr(start, i - start));
      skip_spaces();
      if (i < s.size() && s[i] == ',')
        ++i;
      else
        break;
    }
    if (parenthesised) {
      if (i >= s.size() || s[i] != ')') {
        error = "has '(' without a closing ')'";
        return std::nullopt;
      }
      ++i;
    }
    out += specifiers;
    skip_spaces();
  }
  if (i < s.size()) {
    if (s[i] != ';') {
      error = fmt::format("has unexpected text '{}'", util::trim(s.substr(i)));
      return std::nullopt;
    }
    std::string_view marker = util::trim(s.substr(i + 1));
    if (marker.empty()) {
      error = "has an empty environment marker after ';'";
      return std::nullopt;
    }
    out += "; " + std::string(marker);
  }
  return out;
}

std::optional<std::string> normalise_conda_spec(std::string_view text, std::string& error) {
  auto checked = precheck(
      text, "is a conda option, not a package; set channels in the conda file or .condarc", error);
  if (!checked) return std::nullopt;
  std::string_view s = *checked;
  std::string out;
  bool space = false;
  for (char c : s) {
    bool allowed = std::isalnum(static_cast<unsigned char>(c)) ||
                   std::string_view("._-:=<>!*,|[]'\"/+ ").find(c) != std::string_view::npos;
    if (!allowed) {
      error = fmt::format("contains '{}', which a conda match spec cannot hold", c);
      return std::nullopt;
    }
    if (c == ' ') {
      space = true;
      continue;
    }
    if (space && !out.empty()) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

}  // namespace amlrun::spec
