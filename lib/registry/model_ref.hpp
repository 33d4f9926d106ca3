#pragma once
// How users name a registered model: NAME, NAME:VERSION or NAME@latest.
#include <string>
#include <string_view>

namespace amlrun::registry {

struct ModelRef {
  std::string name;
  std::string version;  // "" for the latest
  bool latest() const { return version.empty(); }
  std::string text() const { return latest() ? name + "@latest" : name + ":" + version; }
};

// Names and versions follow the workspace's name rule (util::check_name), so
// both are safe directory names. Throws InputError.
ModelRef parse_model_ref(std::string_view text);

void check_model_name(std::string_view name);
void check_model_version(std::string_view version);

}  // namespace amlrun::registry
