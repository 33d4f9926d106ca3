#pragma once
#include "lib/compute/compute_target.hpp"

namespace amlrun::compute {

// Runs on this machine under a detached supervisor (`amlrun _supervise`).
class LocalTarget : public ComputeTarget {
 public:
  explicit LocalTarget(const workspace::Workspace& workspace) : m_workspace(workspace) {}
  std::string name() const override { return "local"; }
  std::string type() const override { return "local"; }
  void submit(store::RunStore& store, store::RunRecord& record, util::FileLock lock) override;
  void request_cancel(store::RunStore& store, const store::RunRecord& record) override;
  store::RunRecord refresh(store::RunStore& store, store::RunRecord record) override;
  void settle(const store::RunStore& store, const store::RunRecord& record) const override;

 private:
  workspace::Workspace m_workspace;
};

}  // namespace amlrun::compute
