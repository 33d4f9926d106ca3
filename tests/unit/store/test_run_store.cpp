#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <fstream>

#include "../test_support.hpp"
#include "lib/store/doctor.hpp"
#include "lib/util/file_lock.hpp"
#include "lib/store/run_listing.hpp"
#include "lib/store/run_store.hpp"
#include "lib/util/fs.hpp"

using namespace amlrun;
using store::RunState;
using unit_test::message_of;
using unit_test::TempDir;
namespace fs = std::filesystem;

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
    util::FileLock lock = runs.create(record);
    CHECK(util::is_locked(runs.lock_path(record.id)));
    CHECK_FALSE(util::FileLock::try_acquire(runs.lock_path(record.id)).has_value());
    auto loaded = runs.load(record.id);
    CHECK(loaded.state == RunState::queued);
    CHECK(loaded.history.size() == 1);
    CHECK(loaded.tags == record.tags);
  }
  CHECK_FALSE(util::is_locked(runs.lock_path(record.id)));
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
  CHECK(message_of([&] {
          runs.load(record.id);
        }).starts_with(runs.record_path(record.id).string() + " is corrupt: "));
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
            " has schema version 7, newer than this amlrun understands (2); it was written by a "
            "newer amlrun: upgrade amlrun (the index was left untouched)");
}

TEST_CASE("tags set while another writer holds an older record survive its save") {
  TempDir dir;
  auto ws = make_workspace(dir);
  store::RunStore runs(ws);
  auto record = new_record("exp");
  record.tags = {{"team", "vision"}};
  runs.create(record);
  // A supervisor holds `record`; the user tags the run meanwhile.
  auto tagged = runs.update_tags(record.id, {{"lr", "0.1"}, {"team", "nlp"}}, {});
  CHECK(tagged.tags ==
        std::vector<std::pair<std::string, std::string>>{{"lr", "0.1"}, {"team", "nlp"}});
  runs.transition(record, RunState::preparing);
  auto loaded = runs.load(record.id);
  CHECK(loaded.state == RunState::preparing);
  CHECK(loaded.tags == tagged.tags);
  store::RunFilter by_tag;
  by_tag.tags = {{"lr", "0.1"}};
  CHECK(runs.list(by_tag).size() == 1);
  runs.update_tags(record.id, {}, {"lr"});
  CHECK(runs.list(by_tag).empty());
  CHECK(runs.load(record.id).tags_revision == 2);
}

TEST_CASE("a listing reads changed records and marks broken ones, and only those") {
  TempDir dir;
  auto ws = make_workspace(dir);
  store::RunStore runs(ws);
  auto good = new_record("exp");
  auto stale = new_record("exp");
  auto broken = new_record("exp");
  auto gone = new_record("exp");
  for (auto* r : {&good, &stale, &broken, &gone}) runs.create(*r);
  // A writer killed between run.json and the index: the file is ahead.
  stale.state = RunState::failed;
  stale.exit_code = 3;
  util::write_file_atomic(runs.record_path(stale.id), store::to_json(stale).dump());
  std::ofstream(runs.record_path(broken.id)) << "{\"format_version\": 1, \"id\": tru";
  fs::remove(runs.record_path(gone.id));
  store::RunFilter all;
  all.limit = 0;
  auto rows = runs.list(all);
  REQUIRE(rows.size() == 4);
  store::check_listed_runs(runs, rows);
  for (const auto& row : rows) {
    INFO(row.id);
    if (row.id == good.id) {
      CHECK(row.state == "Queued");
      CHECK(row.problem.empty());
    } else if (row.id == stale.id) {
      CHECK(row.state == "Failed");
      CHECK(row.exit_code == 3);
      CHECK(row.problem.empty());
    } else if (row.id == broken.id) {
      CHECK(row.state == "Corrupt");
      CHECK(row.problem.starts_with(runs.record_path(broken.id).string() + " is corrupt: "));
    } else {
      CHECK(row.state == "Missing");
      CHECK(row.problem == runs.record_path(gone.id).string() + " is missing");
    }
  }
}

TEST_CASE("run.json cut at any byte loads or fails cleanly, never crashes") {
  TempDir dir;
  auto ws = make_workspace(dir);
  store::RunStore runs(ws);
  auto record = new_record("exp");
  record.tags = {{"k", "v"}};
  runs.create(record);
  std::string text = unit_test::read(runs.record_path(record.id));
  int loaded = 0;
  REQUIRE(text.back() == '\n');
  for (std::size_t cut = 0; cut < text.size(); ++cut) {
    std::ofstream(runs.record_path(record.id), std::ios::trunc) << text.substr(0, cut);
    try {
      runs.load(record.id);
      ++loaded;
    } catch (const util::InfraError& error) {
      CHECK(std::string(error.what()).starts_with(runs.record_path(record.id).string()));
    }
  }
  CHECK(loaded == 1);  // only the cut that drops the final newline
}

TEST_CASE("an index of schema 1 is migrated, keeping its runs") {
  TempDir dir;
  auto ws = make_workspace(dir);
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(ws.index_path().c_str(), &db) == SQLITE_OK);
  const char* v1 =
      "CREATE TABLE runs (id TEXT PRIMARY KEY, experiment TEXT NOT NULL, display_name TEXT NOT "
      "NULL, state TEXT NOT NULL, created_at TEXT NOT NULL, ended_at TEXT NOT NULL, exit_code "
      "INTEGER, compute TEXT NOT NULL, tags TEXT NOT NULL);"
      "CREATE TABLE run_tags (run_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, "
      "PRIMARY KEY (run_id, key));"
      "INSERT INTO runs VALUES ('old_20260101T000000_00000000', 'old', '', 'Completed', "
      "'2026-01-01T00:00:00.000Z', '2026-01-01T00:00:01.000Z', 0, 'local', '{}');"
      "PRAGMA user_version = 1;";
  REQUIRE(sqlite3_exec(db, v1, nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  store::RunStore runs(ws);
  auto rows = runs.list({});
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].id == "old_20260101T000000_00000000");
  CHECK(rows[0].record_size == -1);  // unknown until re-indexed: a listing reads the file
  sqlite3* check = nullptr;
  REQUIRE(sqlite3_open(ws.index_path().c_str(), &check) == SQLITE_OK);
  sqlite3_stmt* statement = nullptr;
  sqlite3_prepare_v2(check, "PRAGMA user_version", -1, &statement, nullptr);
  REQUIRE(sqlite3_step(statement) == SQLITE_ROW);
  CHECK(sqlite3_column_int(statement, 0) == store::k_index_schema_version);
  sqlite3_finalize(statement);
  sqlite3_close(check);
}

TEST_CASE("doctor finds and repairs what the index and the run folders disagree on") {
  TempDir dir;
  auto ws = make_workspace(dir);
  store::RunStore runs(ws);
  auto kept = new_record("exp");
  auto unindexed = new_record("exp");
  auto vanished = new_record("exp");
  for (auto* r : {&kept, &unindexed, &vanished}) runs.create(*r);
  runs.unindex(unindexed.id);
  fs::remove_all(runs.run_dir(vanished.id));
  store::DoctorReport report;
  store::check_runs(runs, /*repair=*/false, report);
  REQUIRE(report.findings.size() == 2);
  CHECK(report.findings[0].problem == "run " + vanished.id + " is in the index but " +
                                          runs.record_path(vanished.id).string() + " is missing");
  CHECK(report.findings[1].problem == "run " + unindexed.id + " is not in the index");
  CHECK(report.unresolved() == 2);
  store::DoctorReport repaired;
  store::check_runs(runs, /*repair=*/true, repaired);
  CHECK(repaired.unresolved() == 0);
  store::DoctorReport after;
  store::check_runs(runs, /*repair=*/false, after);
  CHECK(after.findings.empty());
  CHECK(after.runs_checked == 2);
  store::RunFilter all;
  all.limit = 0;
  CHECK(runs.list(all).size() == 2);
}
