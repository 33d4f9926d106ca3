#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <set>

#include "../test_support.hpp"
#include "lib/store/database.hpp"
#include "lib/store/doctor.hpp"
#include "lib/store/metrics.hpp"
#include "lib/store/run_listing.hpp"
#include "lib/store/run_store.hpp"
#include "lib/util/file_lock.hpp"
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

TEST_CASE("list pages with limit and offset; count counts every match") {
  TempDir dir;
  auto ws = make_workspace(dir);
  store::RunStore runs(ws);
  std::vector<std::string> ids;
  for (int i = 0; i < 7; ++i) {
    auto record = new_record(i % 2 ? "odd" : "even");
    runs.create(record);
    ids.push_back(record.id);
  }
  store::RunFilter all;
  all.limit = 0;
  auto everything = runs.list(all);
  REQUIRE(everything.size() == 7);
  store::RunFilter page;
  page.limit = 3;
  page.offset = 3;
  auto second = runs.list(page);
  REQUIRE(second.size() == 3);
  for (int i = 0; i < 3; ++i) CHECK(second[i].id == everything[3 + i].id);
  page.offset = 6;
  CHECK(runs.list(page).size() == 1);
  CHECK(runs.count(page) == 7);
  store::RunFilter even;
  even.experiment = "even";
  even.limit = 1;
  CHECK(runs.count(even) == 4);
  CHECK(runs.list(even).size() == 1);
}

TEST_CASE("list filters by param: a name with a value, or a name for any value") {
  TempDir dir;
  auto ws = make_workspace(dir);
  store::RunStore runs(ws);
  auto a = new_record("exp");
  a.params = {{"lr", "0.1"}, {"epochs", "3"}};
  a.tags = {{"team", "vision"}};
  auto b = new_record("exp");
  b.params = {{"lr", "0.01"}};
  auto c = new_record("exp");
  for (auto* r : {&a, &b, &c}) runs.create(*r);
  auto ids = [&](std::vector<std::pair<std::string, std::optional<std::string>>> params,
                 std::vector<std::pair<std::string, std::string>> tags = {}) {
    store::RunFilter filter;
    filter.params = std::move(params);
    filter.tags = std::move(tags);
    std::set<std::string> found;
    for (const auto& row : runs.list(filter)) found.insert(row.id);
    return found;
  };
  CHECK(ids({{"lr", "0.1"}}) == std::set<std::string>{a.id});
  CHECK(ids({{"lr", std::nullopt}}) == std::set<std::string>{a.id, b.id});
  CHECK(ids({{"lr", std::nullopt}, {"epochs", "3"}}) == std::set<std::string>{a.id});
  CHECK(ids({{"lr", std::nullopt}}, {{"team", "vision"}}) == std::set<std::string>{a.id});
  CHECK(ids({{"lr", "0.2"}}).empty());
  CHECK(ids({{"LR", std::nullopt}}).empty());  // names are exact, as in MLflow
  // A param set later (the tracking endpoint saves the record) is re-indexed.
  c.params = {{"lr", "0.2"}};
  runs.reindex(c);
  CHECK(ids({{"lr", "0.2"}}) == std::set<std::string>{c.id});
}

TEST_CASE("a param filter is name=value or name; a bad name says what to write") {
  using Filter = std::pair<std::string, std::optional<std::string>>;
  CHECK(store::parse_param_filter("lr=0.1") == Filter{"lr", "0.1"});
  CHECK(store::parse_param_filter("lr") == Filter{"lr", std::nullopt});
  CHECK(store::parse_param_filter("note=a=b") == Filter{"note", "a=b"});
  CHECK(store::parse_param_filter("empty=") == Filter{"empty", ""});
  const std::string hint =
      ": write name=value, or name for any value (a name of 1-250 characters, without control "
      "characters)";
  CHECK(message_of([] { store::parse_param_filter("=1"); }) == "invalid param filter '=1'" + hint);
  CHECK(message_of([] { store::parse_param_filter(""); }) == "invalid param filter ''" + hint);
  CHECK(message_of([] { store::parse_param_filter("a\nb=1"); }) ==
        "invalid param filter 'a\\nb=1'" + hint);
  CHECK(message_of([] {
          store::parse_param_filter(std::string(251, 'x'));
        }).starts_with("invalid param filter"));
}

TEST_CASE("an index of schema 4 gets its runs' params from run.json when a param filter asks") {
  TempDir dir;
  auto ws = make_workspace(dir);
  auto record = new_record("exp");
  record.params = {{"lr", "0.1"}};
  {
    store::RunStore runs(ws);
    runs.create(record);
  }
  // What an index migrated from schema 4 holds: the run, not its params.
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(ws.index_path().c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, "DELETE FROM run_params; UPDATE runs SET params_indexed = 0", nullptr,
                       nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  store::RunStore runs(ws);
  store::RunFilter filter;
  filter.params = {{"lr", "0.1"}};
  CHECK(runs.list(filter).empty());
  CHECK(runs.index_params_of_older_runs() == 1);
  REQUIRE(runs.list(filter).size() == 1);
  CHECK(runs.list(filter)[0].id == record.id);
  CHECK(runs.index_params_of_older_runs() == 0);  // once
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
            " has schema version 7, newer than this amlrun understands (5); it was written by a "
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

TEST_CASE("a record rewritten within one clock tick at the same size is still noticed") {
  TempDir dir;
  auto ws = make_workspace(dir);
  store::RunStore runs(ws);
  auto record = new_record("exp");
  record.tags = {{"round", "38"}};
  runs.create(record);
  runs.save(record);
  struct stat indexed {};
  REQUIRE(::stat(runs.record_path(record.id).c_str(), &indexed) == 0);
  // A tag write killed between run.json and the index, landing in the
  // same mtime tick as the indexed write: only the inode differs.
  auto ahead = record;
  ahead.tags = {{"round", "39"}};
  util::write_file_atomic(runs.record_path(record.id), store::to_json(ahead).dump(2) + "\n");
  timespec times[2] = {indexed.st_atim, indexed.st_mtim};
  REQUIRE(::utimensat(AT_FDCWD, runs.record_path(record.id).c_str(), times, 0) == 0);
  struct stat rewritten {};
  REQUIRE(::stat(runs.record_path(record.id).c_str(), &rewritten) == 0);
  REQUIRE(rewritten.st_size == indexed.st_size);
  store::RunFilter all;
  auto rows = runs.list(all);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].tags == record.tags);  // the index is behind...
  store::check_listed_runs(runs, rows);
  CHECK(rows[0].tags == std::vector<std::pair<std::string, std::string>>{{"round", "39"}});
  CHECK(rows[0].problem.empty());
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

namespace {

// Moves everything the write-ahead log holds into index.db, so damage done
// to the file's pages is damage to the index.
void checkpoint(const fs::path& index) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(index.c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr) ==
          SQLITE_OK);
  sqlite3_close(db);
}

// Overwrites `length` bytes of `path` from `offset` with a pattern.
void damage(const fs::path& path, std::size_t offset, std::size_t length) {
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  file.seekp(static_cast<std::streamoff>(offset));
  std::string garbage(length, '\x5a');
  file.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
}

// Two runs, one finished with sealed metrics and tags, as doctor finds them.
std::vector<store::RunRecord> make_history(store::RunStore& runs) {
  std::vector<store::RunRecord> made;
  for (int i = 0; i < 2; ++i) {
    auto record = new_record("exp");
    record.tags = {{"a b", std::to_string(i)}};
    runs.create(record);
    made.push_back(record);
  }
  auto& done = made[0];
  for (auto state : {RunState::preparing, RunState::starting, RunState::running,
                     RunState::finalizing, RunState::completed}) {
    runs.transition(done, state);
  }
  fs::path metrics = runs.run_dir(done.id) / "artifacts" / "logs" / "metrics";
  fs::create_directories(metrics);
  std::ofstream(metrics / "rank_0.jsonl") << "{\"name\": \"loss\", \"value\": 0.5, \"step\": 0}\n"
                                             "{\"name\": \"loss\", \"value\": 0.25, \"step\": 1}\n";
  return made;
}

}  // namespace

TEST_CASE("a damaged index names its file, and doctor --repair sets it aside and rebuilds it") {
  // Garbage where the index was, and a valid header followed by damaged pages.
  for (bool keep_header : {false, true}) {
    INFO((keep_header ? "damaged pages" : "garbage"));
    TempDir dir;
    auto ws = make_workspace(dir);
    std::vector<store::RunRecord> made;
    {
      store::RunStore runs(ws);
      made = make_history(runs);
      store::DoctorReport report;
      store::check_runs(runs, /*repair=*/true, report);  // ingests the sealed metrics
    }
    checkpoint(ws.index_path());
    std::size_t size = fs::file_size(ws.index_path());
    if (keep_header) {
      damage(ws.index_path(), 4096, size - 4096);  // every page after the first
    } else {
      damage(ws.index_path(), 0, size);
    }
    std::string hint =
        "run amlrun doctor --repair: it sets the file aside and rebuilds the index "
        "from the run and model folders";
    std::string message = message_of([&] {
      store::RunStore runs(ws);
      runs.list({});
    });
    CHECK(message.starts_with("the run index " + ws.index_path().string() + " is damaged ("));
    CHECK(message.ends_with("); " + hint));
    if (!keep_header) {
      CHECK(message == "the run index " + ws.index_path().string() +
                           " is damaged (file is not a database); " + hint);
    }

    store::DoctorReport look;
    CHECK_FALSE(store::check_index(ws, /*repair=*/false, look));
    REQUIRE(look.findings.size() == 1);
    CHECK(look.findings[0].problem.starts_with("the index " + ws.index_path().string() +
                                               " is damaged ("));
    CHECK(look.findings[0].repairable);
    CHECK_FALSE(look.findings[0].repaired);
    CHECK(fs::exists(ws.index_path()));  // only looked at

    std::string damaged_bytes = unit_test::read(ws.index_path());
    store::DoctorReport repair;
    CHECK(store::check_index(ws, /*repair=*/true, repair));
    REQUIRE(repair.findings.size() == 1);
    CHECK(repair.findings[0].repaired);
    CHECK(repair.index_rebuilt);
    std::vector<fs::path> aside;
    for (const auto& entry : fs::directory_iterator(ws.root())) {
      std::string name = entry.path().filename().string();
      if (name.starts_with("index.db.damaged-") && !name.ends_with("-wal") &&
          !name.ends_with("-shm")) {
        aside.push_back(entry.path());
      }
    }
    REQUIRE(aside.size() == 1);
    CHECK(unit_test::read(aside[0]) == damaged_bytes);  // kept as it was
    CHECK(repair.findings[0].action ==
          "set it aside as " + aside[0].string() +
              "; the index is rebuilt from the run folders and model manifests");

    store::RunStore runs(ws);
    store::check_runs(runs, /*repair=*/true, repair);
    CHECK(repair.unresolved() == 0);
    store::RunFilter all;
    all.limit = 0;
    CHECK(runs.list(all).size() == 2);
    all.tags = {{"a b", "0"}};
    auto tagged = runs.list(all);
    REQUIRE(tagged.size() == 1);
    CHECK(tagged[0].id == made[0].id);
    auto summaries = store::metric_summaries(runs, made[0].id);
    REQUIRE(summaries.size() == 1);
    CHECK(summaries[0].count == 2);
    CHECK(summaries[0].last_value == 0.25);
    store::DoctorReport after;
    CHECK(store::check_index(ws, /*repair=*/false, after));
    store::check_runs(runs, /*repair=*/false, after);
    CHECK(after.findings.empty());
  }
}

TEST_CASE("a run still going when the index is rebuilt is reported, not lost") {
  TempDir dir;
  auto ws = make_workspace(dir);
  store::RunStore runs(ws);
  auto record = new_record("exp");
  util::FileLock supervisor = runs.create(record);  // held, as a live supervisor holds it
  store::DoctorReport report;
  report.index_rebuilt = true;
  runs.unindex(record.id);
  store::check_runs(runs, /*repair=*/true, report);
  REQUIRE(report.findings.size() == 2);
  CHECK(report.findings[0].problem == "run " + record.id + " is not in the index");
  CHECK(report.findings[0].repaired);
  CHECK(report.findings[1].problem == "run " + record.id +
                                          " is still going: its supervisor keeps writing to the "
                                          "index that was set aside");
  CHECK(report.findings[1].action == "run amlrun doctor --repair again once it has ended");
  CHECK_FALSE(report.findings[1].repaired);
}

TEST_CASE("other modules own and migrate their tables in the index") {
  TempDir dir;
  auto ws = make_workspace(dir);
  store::RunStore runs(ws);
  const char* const v1[] = {"CREATE TABLE things (id INTEGER PRIMARY KEY)"};
  const char* const v2[] = {"CREATE TABLE things (id INTEGER PRIMARY KEY)",
                            "ALTER TABLE things ADD COLUMN name TEXT NOT NULL DEFAULT ''"};
  runs.database().migrate("things", v1);
  runs.database().migrate("things", v1);  // nothing to do
  runs.database().migrate("things", v2);
  store::Statement insert(runs.database(), "INSERT INTO things (name) VALUES ('x')");
  insert.step();
  CHECK(message_of([&] { runs.database().migrate("things", v1); }) ==
        "the run index " + ws.index_path().string() +
            " has version 2 of the things tables, newer than this amlrun understands (1); it was "
            "written by a newer amlrun: upgrade amlrun (the index was left untouched)");
}

TEST_CASE("the tags column round-trips tags in their order; a damaged cell gives none") {
  std::vector<util::Tag> tags = {{"z", "1"}, {"a b", "é"}};
  CHECK(store::tags_from_column(store::tags_column(tags)) == tags);
  CHECK(store::tags_from_column("{broken").empty());
  CHECK(store::tags_from_column(R"({"k": 5})").empty());
}

TEST_CASE("a record that cannot be stored as UTF-8 leaves no run directory behind") {
  TempDir dir;
  auto ws = make_workspace(dir);
  store::RunStore runs(ws);
  auto record = new_record("exp");
  record.spec_file = "/work/\xff/job.yml";
  CHECK(message_of([&] { runs.create(record); }) ==
        "cannot record the run: its spec_file '/work/\\xff/job.yml' is not valid UTF-8; amlrun "
        "stores text as UTF-8 (rename the file or folder, or write the text as UTF-8)");
  CHECK_FALSE(fs::exists(runs.run_dir(record.id)));
  record.spec_file = "job.yml";
  record.tags = {{"k", "a\x1b[2J"}};
  CHECK(message_of([&] { runs.create(record); }).starts_with("invalid value for tag 'k'"));
  CHECK_FALSE(fs::exists(runs.run_dir(record.id)));
  record.tags = {};
  runs.create(record);
  CHECK(message_of([&] {
          runs.update_tags(record.id, {{"k", "\xff"}}, {});
        }).starts_with("invalid value for tag 'k'"));
  CHECK(message_of([&] {
          runs.update_tags(record.id, {}, {"a=b"});
        }).starts_with("invalid tag key 'a=b'"));
}

TEST_CASE("params are added once; a different value is refused and the record kept") {
  TempDir dir;
  auto ws = make_workspace(dir);
  store::RunStore runs(ws);
  auto record = new_record("exp");
  auto lock = runs.create(record);
  runs.add_params(record.id, {{"lr", "0.1"}, {"epochs", "3"}});
  runs.add_params(record.id, {{"lr", "0.1"}});
  CHECK(message_of([&] {
          runs.add_params(record.id, {{"lr", "0.2"}, {"new", "x"}});
        }) ==
        "parameter 'lr' of run " + record.id +
            " is already '0.1'; a parameter is logged once and cannot be changed to '0.2' (log it "
            "under another name)");
  auto loaded = runs.load(record.id);
  CHECK(loaded.params ==
        std::vector<std::pair<std::string, std::string>>{{"epochs", "3"}, {"lr", "0.1"}});
  // The owner saving its older copy keeps them (as it keeps `runs tag` tags).
  runs.transition(record, RunState::preparing);
  CHECK(runs.load(record.id).params.size() == 2);
}

TEST_CASE("child runs are listed by their parent") {
  TempDir dir;
  auto ws = make_workspace(dir);
  store::RunStore runs(ws);
  auto parent = new_record("exp");
  runs.create(parent);
  auto child = new_record("exp");
  child.parent_id = parent.id;
  runs.create(child);
  store::RunFilter filter;
  filter.parent = parent.id;
  auto rows = runs.list(filter);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].id == child.id);
  CHECK(rows[0].parent_id == parent.id);
  CHECK(runs.load(child.id).parent_id == parent.id);
  filter.parent = child.id;
  CHECK(runs.list(filter).empty());
}
