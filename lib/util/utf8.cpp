#include "lib/util/utf8.hpp"

#include <fmt/format.h>

#include "lib/util/error.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::util {

std::size_t utf8_sequence(std::string_view text, std::size_t at, char32_t& code) {
  auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  unsigned char lead = byte(at);
  if (lead < 0x80) {
    code = lead;
    return 1;
  }
  std::size_t length = (lead >> 5) == 0x6    ? 2
                       : (lead >> 4) == 0xE  ? 3
                       : (lead >> 3) == 0x1E ? 4
                                             : 0;
  if (length == 0 || at + length > text.size()) return 0;
  char32_t value = lead & (0x7F >> length);
  for (std::size_t k = 1; k < length; ++k) {
    if ((byte(at + k) & 0xC0) != 0x80) return 0;
    value = (value << 6) | (byte(at + k) & 0x3F);
  }
  // The shortest form only, no UTF-16 surrogates, nothing past Unicode's end.
  static constexpr char32_t k_smallest[] = {0, 0, 0x80, 0x800, 0x10000};
  if (value < k_smallest[length] || (value >= 0xD800 && value <= 0xDFFF) || value > 0x10FFFF) {
    return 0;
  }
  code = value;
  return length;
}

std::size_t first_invalid_utf8(std::string_view text) {
  std::size_t at = 0;
  char32_t code = 0;
  while (at < text.size()) {
    std::size_t length = utf8_sequence(text, at, code);
    if (length == 0) return at;
    at += length;
  }
  return std::string_view::npos;
}

std::size_t utf8_length(std::string_view text) {
  std::size_t count = 0;
  char32_t code = 0;
  for (std::size_t at = 0; at < text.size(); ++count) {
    std::size_t length = utf8_sequence(text, at, code);
    at += length ? length : 1;
  }
  return count;
}

void check_utf8(std::string_view text, std::string_view what) {
  std::size_t bad = first_invalid_utf8(text);
  if (bad == std::string_view::npos) return;
  throw InputError(
      fmt::format("{}: {} is not valid UTF-8 (byte {} is 0x{:02x}); amlrun stores "
                  "text as UTF-8",
                  what, printable(text), bad + 1, static_cast<unsigned char>(text[bad])));
}

namespace {

template <typename Json>
std::optional<InvalidUtf8> find_in(const Json& json, const std::string& path) {
  if (json.is_string()) {
    const auto& text = json.template get_ref<const std::string&>();
    if (first_invalid_utf8(text) != std::string_view::npos) return InvalidUtf8{path, text};
    return std::nullopt;
  }
  if (json.is_object()) {
    for (auto it = json.begin(); it != json.end(); ++it) {
      std::string child = path.empty() ? it.key() : path + "." + it.key();
      if (first_invalid_utf8(it.key()) != std::string_view::npos)
        return InvalidUtf8{child, it.key()};
      if (auto found = find_in(it.value(), child)) return found;
    }
  } else if (json.is_array()) {
    for (std::size_t i = 0; i < json.size(); ++i) {
      if (auto found = find_in(json[i], fmt::format("{}[{}]", path, i))) return found;
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<InvalidUtf8> find_invalid_utf8(const nlohmann::json& json) {
  return find_in(json, "");
}

std::optional<InvalidUtf8> find_invalid_utf8(const nlohmann::ordered_json& json) {
  return find_in(json, "");
}

}  // namespace amlrun::util
