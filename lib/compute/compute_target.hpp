#pragma once
// Compute targets: where runs execute. `local` is built in; named targets
// come from the workspace config (type: slurm, ...).
#include <memory>
#include <string>

#include "lib/store/file_lock.hpp"
#include "lib/store/run_store.hpp"
#include "lib/workspace/workspace.hpp"

namespace amlrun::compute {

class ComputeTarget {
 public:
  virtual ~ComputeTarget() = default;
  virtual std::string name() const = 0;
  virtual std::string type() const = 0;
  // Hands a created run (state Queued, its supervisor lock held by the
  // caller) to the target. Returns once the target has accepted it.
  virtual void submit(store::RunStore& store, store::RunRecord& record, store::FileLock lock) = 0;
  // Asks the target to cancel; returns without waiting for the end.
  virtual void request_cancel(store::RunStore& store, const store::RunRecord& record) = 0;
  // Brings a record up to date when the target knows more than run.json
  // (a supervisor that died without recording a result). Cheap enough to
  // call once a second.
  virtual store::RunRecord refresh(store::RunStore& store, store::RunRecord record) = 0;
};

// "local" or a target named in config.yml; InputError naming the known
// targets (with a suggestion) otherwise.
std::unique_ptr<ComputeTarget> make_target(const workspace::Workspace& workspace,
                                           const std::string& name);

}  // namespace amlrun::compute
