#pragma once
// Sweeps: a sweep is a run owned by a detached controller on this machine
// (`amlrun _sweep`), whatever target its trials run on; the trials are its
// child runs on that target (compute/sweep/controller.hpp). This is the
// submitting half: start the controller, ask it to cancel, and resume it
// when it died (the next amlrun command that looks at the sweep does).
#include "lib/compute/compute_target.hpp"

namespace amlrun::compute {

class SweepTarget : public ComputeTarget {
 public:
  explicit SweepTarget(const workspace::Workspace& workspace) : m_workspace(workspace) {}
  std::string name() const override { return "sweep"; }
  std::string type() const override { return "sweep"; }
  void submit(store::RunStore& store, store::RunRecord& record, util::FileLock lock) override;
  void request_cancel(store::RunStore& store, const store::RunRecord& record) override;
  // A sweep whose controller is gone is resumed: a new controller takes the
  // lock and goes on from the journal. One that keeps dying is failed.
  store::RunRecord refresh(store::RunStore& store, store::RunRecord record) override;
  std::vector<std::pair<std::string, std::string>> describe(
      const store::RunRecord& record) const override;
  void settle(const store::RunStore& store, const store::RunRecord& record) const override;

  // Starts a controller for the sweep, handing it `lock` (the owner lock).
  static void start_controller(store::RunStore& store, const store::RunRecord& record,
                               util::FileLock lock);

 private:
  workspace::Workspace m_workspace;
};

// A controller that died this many times without ending the sweep is not
// started again: the sweep fails, naming its log.
inline constexpr int k_max_controller_starts = 20;

}  // namespace amlrun::compute
