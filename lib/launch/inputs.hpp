#pragma once
// Preparing a run's inputs (the Preparing phase): literals as they are,
// local files and folders made available read-only, http(s) files downloaded.
#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "lib/spec/job_spec.hpp"

namespace amlrun::launch {

namespace fs = std::filesystem;

using Log = std::function<void(const std::string&)>;

// Moves this process into a private mount namespace, so read-only bind
// mounts of inputs are seen by the run's processes only and vanish with them.
// False (and nothing changed) when the process may not (not root).
bool enter_private_mount_namespace();

struct InputOptions {
  // Read-only bind mounts for local inputs (the caller entered a private
  // mount namespace); links otherwise.
  bool private_mounts = false;
  Log log;
  // Polled during downloads: true stops them (a cancel while Preparing).
  std::function<bool()> should_stop;
};

// Returns name → value for every input, in spec order. Local inputs appear
// at <run_dir>/inputs/<name> (a folder) or <run_dir>/inputs/<name>/<file>: a
// read-only bind mount when `private_mounts`, else a symbolic link to the
// original (logged: read-only is then not enforced). Downloads go to
// <run_dir>/inputs/<name>/<file name from the URL>, resumed if a partial
// file is there. Throws util::Error naming the input on failure.
std::vector<std::pair<std::string, std::string>> prepare_inputs(const spec::JobSpec& spec,
                                                                const fs::path& run_dir,
                                                                const InputOptions& options);

}  // namespace amlrun::launch
