#pragma once
// `amlrun submit`, passes 1-6 of DESIGN.md's flow, each a named step:
// load + validate the spec, resolve workspace and target, snapshot the
// source, resolve the environment, create the run record, hand it over.
// Streaming (pass 7) and the exit code (pass 8) belong to the caller.
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lib/compute/compute_target.hpp"
#include "lib/snapshot/snapshot.hpp"
#include "lib/store/run_store.hpp"
#include "lib/workspace/workspace.hpp"

namespace amlrun::submit {

struct SubmitRequest {
  std::filesystem::path spec_file;
  std::vector<std::string> overrides;     // --set key.path=value
  std::optional<std::string> compute;     // --compute NAME
  std::optional<std::string> experiment;  // --experiment NAME
  workspace::OpenOptions workspace;
  std::function<void(const std::string&)> notice;  // one-line notices and warnings
  // A long snapshot's copy progress (snapshot::Options::progress); unset:
  // none is reported.
  std::function<void(const snapshot::CopyProgress&)> snapshot_progress;
};

struct SubmitResult {
  store::RunRecord record;
  std::filesystem::path run_dir;
  // The store the run was created in, open, so the caller can follow it.
  std::unique_ptr<store::RunStore> store;
  // The target that took the run, for following it: a target that keeps a
  // connection (ssh) goes on with the one it submitted over.
  std::unique_ptr<compute::ComputeTarget> target;
};

SubmitResult submit_job(const SubmitRequest& request);

// The job's experiment_name, else the source directory's name, else the job
// file's directory name, else "default" (a valid name in every case).
std::string default_experiment(const std::filesystem::path& code_dir,
                               const std::filesystem::path& spec_file);

}  // namespace amlrun::submit
