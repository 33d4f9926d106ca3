#include "lib/spec/placeholders.hpp"

#include "lib/util/strings.hpp"

namespace amlrun::spec {

std::vector<Placeholder> find_placeholders(std::string_view text) {
  std::vector<Placeholder> out;
  std::size_t position = 0;
  while ((position = text.find("${{", position)) != std::string_view::npos) {
    std::size_t close = text.find("}}", position + 3);
    Placeholder placeholder;
    placeholder.offset = position;
    if (close == std::string_view::npos) {
      placeholder.length = text.size() - position;
      out.push_back(placeholder);
      break;
    }
    placeholder.length = close + 2 - position;
    std::string_view inner = util::trim(text.substr(position + 3, close - position - 3));
    std::size_t dot = inner.find('.');
    placeholder.scope = std::string(inner.substr(0, dot));
    if (dot != std::string_view::npos) placeholder.name = std::string(inner.substr(dot + 1));
    if (placeholder.scope.empty()) placeholder.scope = "?";
    out.push_back(placeholder);
    position = close + 2;
  }
  return out;
}

std::string substitute_placeholders(std::string_view text,
                                    const std::function<std::string(const Placeholder&)>& replace) {
  std::string out;
  std::size_t cursor = 0;
  for (const auto& placeholder : find_placeholders(text)) {
    out.append(text.substr(cursor, placeholder.offset - cursor));
    out += replace(placeholder);
    cursor = placeholder.offset + placeholder.length;
  }
  out.append(text.substr(cursor));
  return out;
}

}  // namespace amlrun::spec
