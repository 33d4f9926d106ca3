#pragma once
// Compute targets: where runs execute. `local` is built in; named targets
// come from the workspace config (type: slurm, ...). Each target lives in
// its own folder (local/, slurm/) with both of its halves: what `amlrun`
// does on the submitting machine (this interface) and the process that owns
// the run where it executes (the supervisor, the Slurm driver).
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "lib/store/run_store.hpp"
#include "lib/util/error.hpp"
#include "lib/util/file_lock.hpp"
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
  virtual void submit(store::RunStore& store, store::RunRecord& record, util::FileLock lock) = 0;
  // Asks the target to cancel; returns without waiting for the end.
  virtual void request_cancel(store::RunStore& store, const store::RunRecord& record) = 0;
  // Brings a record up to date when the target knows more than run.json
  // (a supervisor that died without recording a result, a Slurm job's
  // progress). Cheap enough to call once a second.
  virtual store::RunRecord refresh(store::RunStore& store, store::RunRecord record) = 0;
  // Brings several unfinished records up to date at once (`runs list`):
  // targets that ask a scheduler ask it once for all of them.
  virtual std::vector<store::RunRecord> refresh_all(store::RunStore& store,
                                                    std::vector<store::RunRecord> records);
  // The run directories (store::RunTree roots) where the run's captured logs
  // appear (artifacts/logs/user_logs/std_log_rank_<r>.txt), in the order to
  // look: where they are written first, where they are collected last.
  virtual std::vector<std::filesystem::path> log_roots(const store::RunStore& store,
                                                       const store::RunRecord& record) const;
  // Where files that change the run's state appear (watched while
  // streaming, so refresh() runs as soon as one does); none by default.
  virtual std::vector<std::filesystem::path> state_directories(
      const store::RunStore& store, const store::RunRecord& record) const {
    return {};
  }
  // `amlrun stream` is about to follow the run: a target whose logs arrive
  // from elsewhere starts bringing them into log_roots() (the SSH transport
  // of a Slurm target); the others have them where they are written.
  virtual void start_following(store::RunStore& store, const store::RunRecord& record) {}
  // What `amlrun show` prints about the run besides the record's fields, as
  // label and text ("slurm", "job 12, RUNNING on n1,n2").
  virtual std::vector<std::pair<std::string, std::string>> describe(
      const store::RunRecord& record) const {
    return {};
  }
  // A line for a person following the run when it says something new
  // ("Slurm job 12 PENDING (Resources)"); "" when there is nothing to say.
  virtual std::string progress_note(const store::RunRecord& record) const { return ""; }
  // Waits (briefly) until the process that owned an ended run is gone, so
  // nothing of the run writes any more when the caller returns.
  virtual void settle(const store::RunStore& store, const store::RunRecord& record) const {}
  // One-line notices for the user while submitting (copied inputs, ...).
  void set_notice(std::function<void(const std::string&)> notice) { m_notice = std::move(notice); }

 protected:
  void notice(const std::string& text) const {
    if (m_notice) m_notice(text);
  }

 private:
  std::function<void(const std::string&)> m_notice;
};

// The records of `ids` brought up to date by their targets (each target
// asked once for all of its runs); ids whose record cannot be read are left
// out. For listings: `runs list` shows Slurm runs as they are, not as they
// were when someone last looked.
std::vector<store::RunRecord> refresh_runs(store::RunStore& store,
                                           const std::vector<std::string>& ids);

// "local" or a target named in config.yml; InputError naming the known
// targets (with a suggestion) otherwise.
std::unique_ptr<ComputeTarget> make_target(const workspace::Workspace& workspace,
                                           const std::string& name);

// The target that owns a run: a sweep's controller for a sweep (whatever
// target its trials use), else the run's compute target.
std::unique_ptr<ComputeTarget> target_of(const workspace::Workspace& workspace,
                                         const store::RunRecord& record);

}  // namespace amlrun::compute
