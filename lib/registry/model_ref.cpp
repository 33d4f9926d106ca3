#include "lib/registry/model_ref.hpp"

#include <fmt/format.h>

#include "lib/util/error.hpp"
#include "lib/util/names.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::registry {

void check_model_name(std::string_view name) {
  util::check_name("model", name);
}

void check_model_version(std::string_view version) {
  if (!util::is_valid_name(version)) {
    throw util::InputError(fmt::format(
        "invalid model version {}: use 1-128 characters from [A-Za-z0-9._-], starting with a "
        "letter or digit",
        util::printable(version)));
  }
}

ModelRef parse_model_ref(std::string_view text) {
  ModelRef ref;
  std::size_t colon = text.find(':');
  std::size_t at = text.find('@');
  if (colon != std::string_view::npos && at != std::string_view::npos) {
    throw util::InputError(
        fmt::format("invalid model reference {}: write NAME, NAME:VERSION or NAME@latest",
                    util::printable(text)));
  }
  if (at != std::string_view::npos) {
    if (text.substr(at + 1) != "latest") {
      throw util::InputError(fmt::format(
          "invalid model reference {}: '@' can only be followed by 'latest' (NAME:VERSION picks a "
          "version)",
          util::printable(text)));
    }
    ref.name = text.substr(0, at);
  } else if (colon != std::string_view::npos) {
    ref.name = text.substr(0, colon);
    ref.version = text.substr(colon + 1);
    check_model_version(ref.version);
  } else {
    ref.name = text;
  }
  check_model_name(ref.name);
  return ref;
}

}  // namespace amlrun::registry
