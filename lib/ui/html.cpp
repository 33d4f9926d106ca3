#include "lib/ui/html.hpp"

#include <fmt/format.h>

#include "lib/util/utf8.hpp"

namespace amlrun::ui {

namespace {

constexpr std::string_view k_replacement = "\xEF\xBF\xBD";  // U+FFFD

// Calls `each` with every well-formed sequence of `text` (its code point and
// bytes) and appends U+FFFD to `out` for every byte that starts none.
template <typename Each>
void for_each_sequence(std::string_view text, std::string& out, Each each) {
  std::size_t at = 0;
  while (at < text.size()) {
    char32_t code = 0;
    std::size_t length = util::utf8_sequence(text, at, code);
    if (length == 0) {
      out += k_replacement;
      ++at;
      continue;
    }
    each(code, text.substr(at, length));
    at += length;
  }
}

}  // namespace

std::string valid_utf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for_each_sequence(bytes, out, [&](char32_t, std::string_view sequence) { out += sequence; });
  return out;
}

std::string html(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  for_each_sequence(text, out, [&](char32_t code, std::string_view sequence) {
    switch (code) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        if ((code < 0x20 && code != '\t' && code != '\n') || code == 0x7f) {
          out += k_replacement;
        } else {
          out += sequence;
        }
    }
  });
  return out;
}

std::string script_json(const nlohmann::json& value) {
  std::string dumped = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string out;
  out.reserve(dumped.size());
  for (std::size_t i = 0; i < dumped.size(); ++i) {
    char c = dumped[i];
    if (c == '<') {
      out += "\\u003c";
    } else if (c == '>') {
      out += "\\u003e";
    } else if (c == '&') {
      out += "\\u0026";
    } else if (c == '\xE2' && i + 2 < dumped.size() && dumped[i + 1] == '\x80' &&
               (dumped[i + 2] == '\xA8' || dumped[i + 2] == '\xA9')) {
      out += dumped[i + 2] == '\xA8' ? "\\u2028" : "\\u2029";
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

std::string url_segment(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

}  // namespace amlrun::ui
