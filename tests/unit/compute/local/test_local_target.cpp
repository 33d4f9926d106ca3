#include <catch2/catch.hpp>

#include "lib/compute/compute_target.hpp"
#include "lib/compute/local/local_target.hpp"
#include "lib/compute/local/supervisor.hpp"
#include "lib/store/run_layout.hpp"
#include "tests/unit/test_support.hpp"

using namespace amlrun;
namespace fs = std::filesystem;
using unit_test::message_of;
using unit_test::TempDir;

TEST_CASE("unknown targets are named with the known ones") {
  TempDir dir;
  workspace::Workspace ws(workspace::create_workspace(dir.path / ".amlrun"), {});
  CHECK(compute::make_target(ws, "local")->type() == "local");
  CHECK(message_of([&] { compute::make_target(ws, "lcoal"); }) ==
        "no compute target 'lcoal' in " + ws.config_path().string() +
            " (known: local) (did you mean 'local'?)");
}

TEST_CASE("a run whose supervisor is gone is recorded as failed, with the reason") {
  TempDir dir;
  workspace::Workspace ws(workspace::create_workspace(dir.path / ".amlrun"), {});
  store::RunStore runs(ws);
  compute::LocalTarget target(ws);

  store::RunRecord never_started;
  never_started.id = store::RunStore::new_run_id("exp");
  { auto lock = runs.create(never_started); }  // the submitter died before the hand-over
  auto refreshed = target.refresh(runs, runs.load(never_started.id));
  CHECK(refreshed.state == store::RunState::failed);
  CHECK(refreshed.failure_reason == "the submission was interrupted before the supervisor started");

  store::RunRecord lost;
  lost.id = store::RunStore::new_run_id("exp");
  {
    auto lock = runs.create(lost);
    lost.target["supervisor_pid"] = 999999;
    runs.transition(lost, store::RunState::preparing);
    // While the lock is held the run is alive, whatever its state says.
    CHECK(target.refresh(runs, runs.load(lost.id)).state == store::RunState::preparing);
  }
  refreshed = target.refresh(runs, runs.load(lost.id));
  CHECK(refreshed.state == store::RunState::failed);
  CHECK(refreshed.failure_reason ==
        "the supervisor ended without recording a result (killed, or the machine restarted); see " +
            (runs.run_dir(lost.id) / "artifacts/logs/system/supervisor.txt").string());

  store::RunRecord canceled;
  canceled.id = store::RunStore::new_run_id("exp");
  {
    auto lock = runs.create(canceled);
    canceled.target["supervisor_pid"] = 999999;
    runs.transition(canceled, store::RunState::running);
    target.request_cancel(runs, canceled);
    CHECK(fs::exists(runs.run_dir(canceled.id) / store::k_cancel_request_file));
  }
  refreshed = target.refresh(runs, runs.load(canceled.id));
  CHECK(refreshed.state == store::RunState::canceled);
  CHECK(refreshed.failure_reason == "canceled by user (amlrun cancel); the supervisor was gone");
}
