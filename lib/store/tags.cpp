#include "lib/store/tags.hpp"

#include <fmt/format.h>

#include "lib/util/error.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::store {

namespace {

bool is_control(unsigned char c) {
  return c < 0x20 || c == 0x7f;
}

}  // namespace

void check_tag_key(std::string_view key) {
  bool fine = !key.empty() && key.size() <= 128;
  for (unsigned char c : key) fine = fine && !is_control(c) && c != ' ' && c != '=';
  if (!fine) {
    throw util::InputError(fmt::format(
        "invalid tag key {}: use 1-128 characters without spaces, '=' or control characters",
        util::printable(key)));
  }
}

Tag parse_tag(std::string_view text) {
  std::size_t equals = text.find('=');
  if (equals == std::string_view::npos) {
    throw util::InputError(fmt::format("invalid tag {}: write key=value", util::printable(text)));
  }
  std::string_view key = text.substr(0, equals);
  std::string_view value = text.substr(equals + 1);
  check_tag_key(key);
  bool fine = value.size() <= 1024;
  for (unsigned char c : value) fine = fine && !is_control(c);
  if (!fine) {
    throw util::InputError(fmt::format(
        "invalid value for tag '{}': use at most 1024 characters and no control characters", key));
  }
  return {std::string(key), std::string(value)};
}

}  // namespace amlrun::store
