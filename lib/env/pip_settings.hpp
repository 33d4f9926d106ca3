#pragma once
// The host's pip settings, carried into an image build: pip inside `docker
// build` reaches the package index the way pip on the host does (a private
// index, a proxy whose CA only the host's bundle holds). They come from the
// host's PIP_* variables (pip's own names: PIP_INDEX_URL is index-url) and
// become a pip.conf used by the build's `pip install` only (PIP_CONFIG_FILE
// on that RUN line): a run in the image does not see them.
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace amlrun::env {

struct PipSettings {
  std::string config;  // pip.conf text ([global], sorted keys)
  // Host files the settings name (cert, client-cert): the name in the
  // context's pip/ folder, and the file on the host.
  std::vector<std::pair<std::string, std::filesystem::path>> files;
};

// From `environment` (NAME=value entries). Settings that name a path on the
// host which the build cannot see (find-links to a folder, cache-dir, log,
// ...) are left out; a cert file is copied in; a value with a control
// character (which would add a line to pip.conf) is left out.
PipSettings host_pip_settings(const std::vector<std::string>& environment);

}  // namespace amlrun::env
