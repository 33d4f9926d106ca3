#include "lib/util/shell.hpp"

namespace amlrun::util {

static bool is_plain_shell_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '@' || c == '%' || c == '+' || c == '=' || c == ':' || c == ',' || c == '.' ||
         c == '/' || c == '-';
}

std::string shell_quote(std::string_view value) {
  if (!value.empty()) {
    bool plain = true;
    for (char c : value) {
      if (!is_plain_shell_char(c)) {
        plain = false;
        break;
      }
    }
    if (plain) {
      return std::string(value);
    }
  }
  std::string out;
  out.reserve(value.size() + 2);
  out.push_back('\'');
  for (char c : value) {
    if (c == '\'') {
      out += "'\\''";  // close, escaped quote, reopen
    } else {
      out.push_back(c);
    }
  }
  out.push_back('\'');
  return out;
}

std::string shell_join(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& word : argv) {
    if (!out.empty()) out.push_back(' ');
    out += shell_quote(word);
  }
  return out;
}

}  // namespace amlrun::util
