#include "lib/registry/model_ref.hpp"

#include <fmt/format.h>

#include "lib/util/error.hpp"
#include "lib/util/names.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::registry {

ModelRef parse_model_ref(std::string_view text) {
  ModelRef ref;
  std::size_t colon = text.find(':');
  std::size_t at = text.find('@');
  if (colon != std::string_view::npos && at != std::string_view::npos) {
    throw util::InputError(fmt::format(
        "invalid model reference {}: write NAME, NAME:VERSION or NAME@latest", util::printable(text)));
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
    util::check_name("model version", ref.version);
  } else {
    ref.name = text;
  }
  util::check_name("model name", ref.name);
  return ref;
}

}  // namespace amlrun::registry
