#pragma once
// The run store: one directory per run with run.json (written atomically:
// temp, fsync, rename, fsync dir) and a SQLite index of all runs for fast
// queries. run.json is the truth; the index is derived from it.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "lib/store/database.hpp"
#include "lib/store/run_record.hpp"
#include "lib/util/file_lock.hpp"
#include "lib/util/time.hpp"
#include "lib/workspace/workspace.hpp"

namespace amlrun::store {

namespace fs = std::filesystem;

struct RunFilter {
  std::string experiment;
  std::optional<RunState> state;
  std::vector<std::pair<std::string, std::string>> tags;
  // Params (`--param NAME=VALUE`, `--param NAME`): a run must have each
  // name, with that value when one is given.
  std::vector<std::pair<std::string, std::optional<std::string>>> params;
  std::optional<std::string> parent;  // child runs of this run only
  int limit = 50;                     // 0: all
  int offset = 0;                     // rows skipped first (paging)
};

// One row of the index: enough to list runs without opening their files.
struct IndexRow {
  std::string id;
  std::string experiment;
  std::string display_name;
  std::string state;
  std::string created_at;
  std::string ended_at;
  std::optional<int> exit_code;
  std::string compute;
  std::string parent_id;
  std::vector<std::pair<std::string, std::string>> tags;
  // run.json's modification time, size and inode when it was indexed; a
  // listing compares them to the file (see run_listing.hpp).
  std::int64_t record_mtime_ns = 0;
  std::int64_t record_size = -1;
  std::int64_t record_inode = 0;
  // Set by check_listed_runs: "" when the row matches run.json, else why not
  // ("run.json is corrupt: ...", "run.json is missing").
  std::string problem;
};

class RunStore {
 public:
  // Opens (creating if needed) the index; refuses an index written by a newer
  // schema, naming both versions.
  explicit RunStore(const workspace::Workspace& workspace);
  ~RunStore();
  RunStore(const RunStore&) = delete;
  RunStore& operator=(const RunStore&) = delete;

  const workspace::Workspace& workspace() const { return m_workspace; }
  fs::path run_dir(const std::string& id) const { return m_workspace.run_dir(id); }
  fs::path record_path(const std::string& id) const { return run_dir(id) / "run.json"; }
  fs::path lock_path(const std::string& id) const { return run_dir(id) / "supervisor.lock"; }

  // A fresh id: <experiment>_<utc yyyymmddThhmmss>_<8 random hex>.
  static std::string new_run_id(const std::string& experiment);

  // Creates runs/<id>/ (which must not exist yet), takes its supervisor lock
  // and only then writes the record in state Queued, so a reader never sees
  // a live run without a lock holder. The caller hands the lock on to the
  // process that will own the run.
  util::FileLock create(RunRecord& record);
  // Writes run.json (durably) and then the index row, under the run's record
  // lock. Tags set by `amlrun runs tag` since `record` was loaded are kept.
  void save(const RunRecord& record);
  // Sets and removes tags of a stored run (read, change and write under the
  // record lock, so a concurrent transition keeps them); returns the record.
  RunRecord update_tags(const std::string& id,
                        const std::vector<std::pair<std::string, std::string>>& set,
                        const std::vector<std::string>& remove);
  // Adds parameters to a stored run under the record lock. A parameter is
  // set once: the same value again is accepted, a different one throws
  // InputError naming both values. Returns the record.
  RunRecord add_params(const std::string& id,
                       const std::vector<std::pair<std::string, std::string>>& params);
  // Adds a model the run logged (id -> name) under the record lock, as
  // add_params does; returns the record.
  RunRecord add_model(const std::string& id, const std::string& model_id, const std::string& name);
  RunRecord load(const std::string& id) const;
  // An exact id, or a unique prefix of one; InputError otherwise (an
  // ambiguous prefix lists the candidates).
  std::string resolve(const std::string& id_or_prefix) const;
  std::vector<IndexRow> list(const RunFilter& filter) const;
  // How many runs match `filter`, all of them (its limit and offset aside).
  std::int64_t count(const RunFilter& filter) const;
  // Re-indexes one run from its run.json (doctor, and recovery after a crash
  // between the two writes).
  void reindex(const RunRecord& record);
  // Indexes the params of runs indexed before the index had them (schema
  // 5), reading their run.json; a record that cannot be read is left for
  // `doctor`. Returns how many runs it indexed. A listing that filters by
  // param calls it first; after the first time it finds none (one query).
  int index_params_of_older_runs();
  // Drops a run's rows from the index (doctor: its directory is gone).
  void unindex(const std::string& id);

  // The index, for the other tables in it (metrics, models).
  const Database& database() const { return m_db; }

  // Moves the record to `next` with a timestamp (now, or `at` when the
  // change is known to have happened earlier: a run found ended after its
  // owner died), records history and end facts, and saves it. Illegal
  // transitions throw (a bug, not user input).
  void transition(RunRecord& record, RunState next, std::optional<util::TimePoint> at = {});

 private:
  void index(const RunRecord& record);
  void write_record(const RunRecord& record);  // the caller holds the record lock
  workspace::Workspace m_workspace;
  Database m_db;
};

}  // namespace amlrun::store
