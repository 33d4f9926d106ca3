#include "lib/env/pip_settings.hpp"

#include <unistd.h>

#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "lib/util/strings.hpp"

namespace amlrun::env {

namespace {

// Options whose value is a path on the host, which a build cannot use.
const std::vector<std::string> k_host_paths = {"build", "cache-dir", "config-file", "constraint",
                                               "log",   "prefix",    "report",      "requirement",
                                               "root",  "src",       "target"};

bool has_control_character(const std::string& value) {
  return std::any_of(value.begin(), value.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

}  // namespace

PipSettings host_pip_settings(const std::vector<std::string>& environment) {
  std::map<std::string, std::string> settings;
  PipSettings out;
  for (const auto& entry : environment) {
    auto equals = entry.find('=');
    if (entry.rfind("PIP_", 0) != 0 || equals == std::string::npos || equals == 4) continue;
    std::string key = entry.substr(4, equals - 4);
    std::string value = entry.substr(equals + 1);
    std::transform(key.begin(), key.end(), key.begin(), [](unsigned char c) {
      return c == '_' ? '-' : static_cast<char>(std::tolower(c));
    });
    if (has_control_character(value) ||
        std::find(k_host_paths.begin(), k_host_paths.end(), key) != k_host_paths.end()) {
      continue;
    }
    if (key == "cert" || key == "client-cert") {
      if (::access(value.c_str(), R_OK) != 0) continue;
      std::string name = key + ".pem";
      out.files.emplace_back(name, value);
      value = "/amlrun/pip/" + name;
    } else if (key == "find-links") {
      // Links to folders on the host are not in the build; URLs are.
      std::vector<std::string> urls;
      for (const auto& link : util::split(value, ' ')) {
        if (link.find("://") != std::string::npos && link.rfind("file:", 0) != 0) {
          urls.push_back(link);
        }
      }
      if (urls.empty()) continue;
      value = util::join(urls, " ");
    }
    settings[key] = value;
  }
  out.config =
      "# The host's PIP_* settings, for this build's pip install only (written by amlrun).\n"
      "[global]\n";
  for (const auto& [key, value] : settings) out.config += fmt::format("{} = {}\n", key, value);
  return out;
}

}  // namespace amlrun::env
