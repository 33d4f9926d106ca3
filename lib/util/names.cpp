#include "lib/util/names.hpp"

#include <fmt/format.h>

#include "lib/util/error.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::util {

static bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

static bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool is_valid_name(std::string_view name) {
  if (name.empty() || name.size() > 128 || !is_alnum(name[0])) return false;
  for (char c : name) {
    if (!is_name_char(c)) return false;
  }
  return true;
}

void check_name(std::string_view kind, std::string_view name) {
  if (!is_valid_name(name)) {
    throw InputError(fmt::format(
        "invalid {} name {}: use 1-128 characters from [A-Za-z0-9._-], starting with a letter or "
        "digit",
        kind, printable(name)));
  }
}

std::string sanitize_name(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (out.size() >= 128) break;
    if (is_name_char(c)) {
      if (out.empty() && !is_alnum(c)) continue;
      out.push_back(c);
    } else if (!out.empty() && out.back() != '_') {
      out.push_back('_');
    }
  }
  return out;
}

}  // namespace amlrun::util
