#pragma once
// Compute targets: where runs execute. `local` is built in; named targets
// come from the workspace config (type: slurm, ...).
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "lib/store/file_lock.hpp"
#include "lib/store/run_store.hpp"
#include "lib/util/error.hpp"
#include "lib/workspace/workspace.hpp"

namespace amlrun::compute {

// Thrown by submit() when the target may have accepted the run after all (a
// scheduler that did not answer in time): the record is left as it is, for
// refresh() to settle, instead of being recorded as Failed.
class SubmissionOutcomeUnknown : public util::InfraError {
 public:
  using InfraError::InfraError;
};

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
  // Where the run's per-rank logs (std_log_rank_<r>.txt) appear, in the
  // order to look: where they are written first, where they are sealed last.
  virtual std::vector<std::filesystem::path> log_directories(const store::RunStore& store,
                                                             const store::RunRecord& record) const;
  // Where files that change the run's state appear (watched while
  // streaming, so refresh() runs as soon as one does); none by default.
  virtual std::vector<std::filesystem::path> state_directories(
      const store::RunStore& store, const store::RunRecord& record) const {
    return {};
  }
  // One-line notices for the user while submitting (copied inputs, ...).
  void set_notice(std::function<void(const std::string&)> notice) { m_notice = std::move(notice); }

 protected:
  void notice(const std::string& text) const {
    if (m_notice) m_notice(text);
  }

 private:
  std::function<void(const std::string&)> m_notice;
};

// "local" or a target named in config.yml; InputError naming the known
// targets (with a suggestion) otherwise.
std::unique_ptr<ComputeTarget> make_target(const workspace::Workspace& workspace,
                                           const std::string& name);

}  // namespace amlrun::compute
