#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <fstream>

#include "../test_support.hpp"
#include "lib/store/file_lock.hpp"
#include "lib/store/run_store.hpp"

using namespace amlrun;
using store::RunState;
using unit_test::message_of;
using unit_test::TempDir;

namespace {

workspace::Workspace make_workspace(const TempDir& dir) {
  return workspace::Workspace(workspace::create_workspace(dir.path / ".amlrun"), {});
}

store::RunRecord new_record(const std::string& experiment) {
  store::RunRecord record;
  record.id = store::RunStore::new_run_id(experiment);
  record.experiment = experiment;
  return record;
}

}  // namespace

TEST_CASE("run ids follow <experiment>_<utc>_<8 hex> and stay valid names") {
  std::string id = store::RunStore::new_run_id("exp");
  REQUIRE(id.size() == std::string("exp_20261122T010600_0a1b2c3d").size());
  CHECK(id.substr(0, 4) == "exp_");
  CHECK(id[12] == 'T');
  CHECK(store::RunStore::new_run_id(std::string(128, 'e')).size() == 100 + 1 + 15 + 1 + 8);
  CHECK(store::RunStore::new_run_id("exp") != store::RunStore::new_run_id("exp"));
}

TEST_CASE("create writes Queued under a held lock and indexes the run") {
  TempDir dir;
  auto ws = make_workspace(dir);
  store::RunStore runs(ws);
  auto record = new_record("exp");
  record.tags = {{"team", "vision"}};
  {
    store::FileLock lock = runs.create(record);
    CHECK(store::is_locked(runs.lock_path(record.id)));
    CHECK_FALSE(store::FileLock::try_acquire(runs.lock_path(record.id)).has_value());
    auto loaded = runs.load(record.id);
    CHECK(loaded.state == RunState::queued);
    CHECK(loaded.history.size() == 1);
    CHECK(loaded.tags == record.tags);
  }
  CHECK_FALSE(store::is_locked(runs.lock_path(record.id)));
  auto rows = runs.list({});
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].id == record.id);
  CHECK(rows[0].state == "Queued");
  CHECK(message_of([&] { runs.create(record); }) == "run " + record.id + " already exists");
}

TEST_CASE("transitions follow the lifecycle and are recorded with times") {
  TempDir dir;
  auto ws = make_workspace(dir);
  store::RunStore runs(ws);
  auto record = new_record("exp");
  runs.create(record);
  for (auto state : {RunState::preparing, RunState::starting, RunState::running,
                     RunState::finalizing, RunState::completed}) {
    runs.transition(record, state);
  }
  auto loaded = runs.load(record.id);
  CHECK(loaded.state == RunState::completed);
  CHECK(loaded.history.size() == 6);
  CHECK_FALSE(loaded.started_at.empty());
  CHECK_FALSE(loaded.ended_at.empty());
  CHECK(message_of([&] { runs.transition(record, RunState::failed); }) ==
        "run " + record.id + ": cannot go from Completed to Failed");
  CHECK(runs.list({})[0].state == "Completed");

  CHECK(store::can_transition(RunState::queued, RunState::failed));
  CHECK(store::can_transition(RunState::running, RunState::canceled));
  CHECK_FALSE(store::can_transition(RunState::running, RunState::completed));
  CHECK_FALSE(store::can_transition(RunState::running, RunState::preparing));
  CHECK_FALSE(store::can_transition(RunState::canceled, RunState::failed));
}

TEST_CASE("ids resolve exactly or by unique prefix") {
  TempDir dir;
  auto ws = make_workspace(dir);
  store::RunStore runs(ws);
  auto a = new_record("alpha");
  auto b1 = new_record("beta");
  auto b2 = new_record("beta");
  runs.create(a);
  runs.create(b1);
  runs.create(b2);
  CHECK(runs.resolve(a.id) == a.id);
  CHECK(runs.resolve("alp") == a.id);
  std::vector<std::string> betas = {b1.id, b2.id};
  std::sort(betas.begin(), betas.end());
  CHECK(message_of([&] { runs.resolve("beta_"); }) ==
        "run id prefix 'beta_' is ambiguous; it matches:\n  " + betas[0] + "\n  " + betas[1]);
  CHECK(message_of([&] { runs.resolve("gamma"); }) ==
        "no run 'gamma' in workspace " + ws.root().string() + " (amlrun runs list shows them)");
  CHECK(message_of([&] { runs.resolve("../x"); }) == "invalid run id '../x'");
}

TEST_CASE("list filters by experiment, state and tag, newest first") {
  TempDir dir;
  auto ws = make_workspace(dir);
  store::RunStore runs(ws);
  auto a = new_record("alpha");
  a.tags = {{"k", "v"}};
  auto b = new_record("beta");
  runs.create(a);
  runs.create(b);
  runs.transition(b, RunState::failed);
  store::RunFilter by_experiment;
  by_experiment.experiment = "alpha";
  CHECK(runs.list(by_experiment).size() == 1);
  store::RunFilter by_state;
  by_state.state = RunState::failed;
  REQUIRE(runs.list(by_state).size() == 1);
  CHECK(runs.list(by_state)[0].id == b.id);
  store::RunFilter by_tag;
  by_tag.tags = {{"k", "v"}};
  REQUIRE(runs.list(by_tag).size() == 1);
  CHECK(runs.list(by_tag)[0].id == a.id);
  auto all = runs.list({});
  REQUIRE(all.size() == 2);
  CHECK(all[0].created_at >= all[1].created_at);
}

TEST_CASE("a corrupt run.json is reported naming the file") {
  TempDir dir;
  auto ws = make_workspace(dir);
  store::RunStore runs(ws);
  auto record = new_record("exp");
  runs.create(record);
  std::ofstream(runs.record_path(record.id)) << "{\"format_version\": 1, \"id\":";
  CHECK(message_of([&] { runs.load(record.id); }).starts_with(
      runs.record_path(record.id).string() + " is corrupt: "));
  std::ofstream(runs.record_path(record.id)) << "{\"format_version\": 2, \"id\": \"x\"}";
  CHECK(message_of([&] { runs.load(record.id); }) ==
        runs.record_path(record.id).string() +
            ": run record format 2 is newer than this amlrun understands (1); upgrade amlrun");
}

TEST_CASE("an index with a newer schema is refused and left untouched") {
  TempDir dir;
  auto ws = make_workspace(dir);
  { store::RunStore runs(ws); }
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(ws.index_path().c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, "PRAGMA user_version = 7", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  CHECK(message_of([&] { store::RunStore runs(ws); }) ==
        "the run index " + ws.index_path().string() +
            " has schema version 7, newer than this amlrun understands (1); it was written by a "
            "newer amlrun: upgrade amlrun (the index was left untouched)");
}
