#pragma once
// ${{inputs.x}} / ${{outputs.y}} references in a command or argument.
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace amlrun::spec {

struct Placeholder {
  std::size_t offset = 0;  // of "${{"
  std::size_t length = 0;  // through "}}"
  std::string scope;       // "inputs", "outputs", or whatever else was written
  std::string name;        // the part after the first '.'
  std::string text() const { return "${{" + scope + (name.empty() ? "" : "." + name) + "}}"; }
};

// Every "${{ ... }}" in text, in order; whitespace inside the braces is allowed.
// An opening "${{" without "}}" is returned with scope "" (reported as unclosed).
std::vector<Placeholder> find_placeholders(std::string_view text);

// Replaces every placeholder with replace(placeholder); text outside stays as is.
std::string substitute_placeholders(std::string_view text,
                                    const std::function<std::string(const Placeholder&)>& replace);

}  // namespace amlrun::spec
