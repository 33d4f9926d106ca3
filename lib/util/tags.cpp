#include "lib/util/tags.hpp"

#include <fmt/format.h>

#include "lib/util/error.hpp"
#include "lib/util/strings.hpp"
#include "lib/util/utf8.hpp"

namespace amlrun::util {

namespace {

// C0 controls, DEL and C1 controls: what would break a table row or reach a
// terminal as a command.
bool has_control_character(std::string_view text) {
  std::size_t at = 0;
  char32_t code = 0;
  while (at < text.size()) {
    std::size_t length = utf8_sequence(text, at, code);
    if (length == 0) return false;  // not UTF-8 at all: reported as such
    if (code < 0x20 || (code >= 0x7f && code <= 0x9f)) return true;
    at += length;
  }
  return false;
}

template <typename Json>
std::vector<Tag> from_json(const Json& json) {
  std::vector<Tag> tags;
  if (!json.is_object()) return tags;
  for (auto it = json.begin(); it != json.end(); ++it) {
    tags.emplace_back(it.key(), it.value().template get<std::string>());
  }
  return tags;
}

}  // namespace

std::optional<std::string> tag_key_problem(std::string_view key) {
  std::size_t characters = utf8_length(key);
  if (characters == 0 || characters > k_max_tag_key_characters ||
      key.find('=') != std::string_view::npos || has_control_character(key) ||
      first_invalid_utf8(key) != std::string_view::npos) {
    return fmt::format(
        "invalid tag key {}: use 1-{} characters of UTF-8 text, without '=' or control characters",
        printable(key), k_max_tag_key_characters);
  }
  return std::nullopt;
}

std::optional<std::string> tag_value_problem(std::string_view key, std::string_view value) {
  if (utf8_length(value) > k_max_tag_value_characters || has_control_character(value) ||
      first_invalid_utf8(value) != std::string_view::npos) {
    return fmt::format(
        "invalid value for tag {}: use at most {} characters of UTF-8 text, without control "
        "characters (the value is {})",
        printable(key), k_max_tag_value_characters, printable(value, 40));
  }
  return std::nullopt;
}

void check_tag_key(std::string_view key) {
  if (auto problem = tag_key_problem(key)) throw InputError(*problem);
}

void check_tag(const Tag& tag) {
  check_tag_key(tag.first);
  if (auto problem = tag_value_problem(tag.first, tag.second)) throw InputError(*problem);
}

Tag parse_tag(std::string_view text) {
  std::size_t equals = text.find('=');
  if (equals == std::string_view::npos) {
    throw InputError(fmt::format("invalid tag {}: write key=value", printable(text)));
  }
  Tag tag{std::string(text.substr(0, equals)), std::string(text.substr(equals + 1))};
  check_tag(tag);
  return tag;
}

nlohmann::ordered_json tags_to_json(const std::vector<Tag>& tags) {
  nlohmann::ordered_json json = nlohmann::ordered_json::object();
  for (const auto& [key, value] : tags) json[key] = value;
  return json;
}

std::vector<Tag> tags_from_json(const nlohmann::json& json) {
  return from_json(json);
}

std::vector<Tag> tags_from_json(const nlohmann::ordered_json& json) {
  return from_json(json);
}

}  // namespace amlrun::util
