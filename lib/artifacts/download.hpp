#pragma once
// `amlrun download`: a run's sealed outputs (and logs) copied to a local
// directory as DIR/artifacts/outputs/... and DIR/artifacts/logs/..., with
// the safety rules of tree_copy.hpp.
#include <filesystem>
#include <string>

#include "lib/artifacts/tree_copy.hpp"
#include "lib/store/run_store.hpp"

namespace amlrun::artifacts {

struct DownloadRequest {
  std::string run_id;  // resolved
  fs::path destination;
  std::string prefix;    // "outputs/model": only that file or folder; "" for all of outputs
  bool all = false;      // outputs and logs
  bool partial = false;  // allow a run that has not ended (what is there now)
};

// What will be copied, checked before anything is written: the destination is
// outside the workspace, the run has ended (or `partial`), the prefix exists.
// InputError otherwise, naming the run and what to do.
CopyPlan plan_download(const store::RunStore& store, const DownloadRequest& request);

}  // namespace amlrun::artifacts
