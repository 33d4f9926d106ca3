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

namespace {

std::string base64(std::string_view data) {
  static const char* k_alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    unsigned v = static_cast<unsigned char>(data[i]) << 16 |
                 static_cast<unsigned char>(data[i + 1]) << 8 |
                 static_cast<unsigned char>(data[i + 2]);
    for (int shift : {18, 12, 6, 0}) out.push_back(k_alphabet[(v >> shift) & 63]);
  }
  if (std::size_t rest = data.size() - i; rest > 0) {
    unsigned v = static_cast<unsigned char>(data[i]) << 16;
    if (rest == 2) v |= static_cast<unsigned char>(data[i + 1]) << 8;
    out.push_back(k_alphabet[(v >> 18) & 63]);
    out.push_back(k_alphabet[(v >> 12) & 63]);
    out.push_back(rest == 2 ? k_alphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

}  // namespace

std::string login_shell_command(std::string_view script) {
  // A subshell, so an `exit` in the script still reaches the mapping.
  std::string wrapped = "(\n" + std::string(script) +
                        "\n); s=$?; if [ \"$s\" -eq 255 ]; then s=254; fi; exit \"$s\"\n";
  // base64 (coreutils) is on every Linux login node; -d is its POSIX-ish
  // spelling there. The word has only [A-Za-z0-9+/=], spaces, $ ( ) | " and
  // the outer single quotes: literal inside '...' for every shell above.
  return "/bin/sh -c 'eval \"$(echo " + base64(wrapped) + " | base64 -d)\"'";
}

}  // namespace amlrun::util
