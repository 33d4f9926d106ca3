#include "lib/store/run_store.hpp"

#include <sqlite3.h>
#include <sys/stat.h>

#include <cerrno>
#include <fmt/format.h>

#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/names.hpp"
#include "lib/util/random.hpp"
#include "lib/util/time.hpp"

namespace amlrun::store {

namespace {

// A prepared statement that finalises itself.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : m_db(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &m_statement, nullptr) != SQLITE_OK) {
      throw util::InfraError(fmt::format("run index: {}", sqlite3_errmsg(db)));
    }
  }
  ~Statement() { sqlite3_finalize(m_statement); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  void bind(int index, const std::string& value) {
    sqlite3_bind_text(m_statement, index, value.c_str(), static_cast<int>(value.size()),
                      SQLITE_TRANSIENT);
  }
  void bind(int index, std::int64_t value) { sqlite3_bind_int64(m_statement, index, value); }
  void bind_null(int index) { sqlite3_bind_null(m_statement, index); }
  // true while rows come; false when done.
  bool step() {
    int rc = sqlite3_step(m_statement);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw util::InfraError(fmt::format("run index: {}", sqlite3_errmsg(m_db)));
  }
  std::string text(int column) const {
    const unsigned char* value = sqlite3_column_text(m_statement, column);
    return value ? reinterpret_cast<const char*>(value) : "";
  }
  bool is_null(int column) const { return sqlite3_column_type(m_statement, column) == SQLITE_NULL; }
  std::int64_t integer(int column) const { return sqlite3_column_int64(m_statement, column); }

 private:
  sqlite3* m_db;
  sqlite3_stmt* m_statement = nullptr;
};

void execute(sqlite3* db, const char* sql) {
  char* error = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &error) != SQLITE_OK) {
    std::string message = error ? error : "unknown error";
    sqlite3_free(error);
    throw util::InfraError(fmt::format("run index: {}", message));
  }
}

const char* k_schema = R"(
CREATE TABLE IF NOT EXISTS runs (
  id TEXT PRIMARY KEY,
  experiment TEXT NOT NULL,
  display_name TEXT NOT NULL,
  state TEXT NOT NULL,
  created_at TEXT NOT NULL,
  ended_at TEXT NOT NULL,
  exit_code INTEGER,
  compute TEXT NOT NULL,
  tags TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_created ON runs(created_at DESC);
CREATE INDEX IF NOT EXISTS runs_by_experiment ON runs(experiment, created_at DESC);
CREATE INDEX IF NOT EXISTS runs_by_state ON runs(state, created_at DESC);
CREATE TABLE IF NOT EXISTS run_tags (
  run_id TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (run_id, key)
);
CREATE INDEX IF NOT EXISTS run_tags_by_pair ON run_tags(key, value);
)";

std::int64_t read_user_version(sqlite3* db) {
  Statement version(db, "PRAGMA user_version");
  version.step();
  return version.integer(0);
}

}  // namespace

RunStore::RunStore(const workspace::Workspace& workspace) : m_workspace(workspace) {
  std::string path = m_workspace.index_path().string();
  if (sqlite3_open_v2(path.c_str(), &m_db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string message = m_db ? sqlite3_errmsg(m_db) : "out of memory";
    sqlite3_close(m_db);
    m_db = nullptr;
    throw util::InfraError(fmt::format("cannot open the run index {}: {}", path, message));
  }
  // Several processes (supervisors, clients) share the index: wait for each
  // other instead of failing, and let readers run during writes (WAL).
  sqlite3_busy_timeout(m_db, 10000);
  // Every amlrun process opens the index briefly; checkpointing and deleting
  // the WAL at each close would cost an fsync and two file creations per
  // command. SQLite checkpoints on its own as the WAL grows.
  int on = 1;
  sqlite3_db_config(m_db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
  sqlite3_file_control(m_db, "main", SQLITE_FCNTL_PERSIST_WAL, &on);
  try {
    // The common case, an index of the current schema, needs no write lock:
    // read the version first and take the lock only to create or refuse.
    std::int64_t found = read_user_version(m_db);
    if (found != k_index_schema_version) {
      execute(m_db, "PRAGMA journal_mode=WAL");
      execute(m_db, "BEGIN IMMEDIATE");
      found = read_user_version(m_db);
      if (found > k_index_schema_version) {
        execute(m_db, "ROLLBACK");
        throw util::InfraError(fmt::format(
            "the run index {} has schema version {}, newer than this amlrun understands ({}); it "
            "was written by a newer amlrun: upgrade amlrun (the index was left untouched)",
            path, found, k_index_schema_version));
      }
      if (found < k_index_schema_version) {
        execute(m_db, k_schema);
        execute(m_db, fmt::format("PRAGMA user_version = {}", k_index_schema_version).c_str());
      }
      execute(m_db, "COMMIT");
    }
    execute(m_db, "PRAGMA synchronous=NORMAL");
  } catch (...) {
    sqlite3_close(m_db);
    m_db = nullptr;
    throw;
  }
}

RunStore::~RunStore() { sqlite3_close(m_db); }

std::string RunStore::new_run_id(const std::string& experiment) {
  // Keep the id a valid name (at most 128 characters).
  std::string prefix = experiment.substr(0, 100);
  return fmt::format("{}_{}_{}", prefix, util::utc_compact(util::Clock::now()),
                     util::random_hex(4));
}

FileLock RunStore::create(RunRecord& record) {
  fs::path dir = run_dir(record.id);
  if (::mkdir(dir.c_str(), 0755) != 0) {
    if (errno == EEXIST) throw util::InfraError(fmt::format("run {} already exists", record.id));
    util::throw_errno(fmt::format("cannot create {}", dir.string()));
  }
  FileLock lock = FileLock::acquire(lock_path(record.id));
  record.state = RunState::queued;
  record.created_at = util::utc_iso8601(util::Clock::now());
  record.history = {{RunState::queued, record.created_at}};
  save(record);
  return lock;
}

void RunStore::save(const RunRecord& record) {
  util::write_file_atomic(record_path(record.id), to_json(record).dump(2) + "\n");
  index(record);
}

void RunStore::reindex(const RunRecord& record) { index(record); }

void RunStore::index(const RunRecord& record) {
  execute(m_db, "BEGIN IMMEDIATE");
  try {
    Statement upsert(m_db,
                     "INSERT INTO runs (id, experiment, display_name, state, created_at, ended_at, "
                     "exit_code, compute, tags) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
                     "ON CONFLICT(id) DO UPDATE SET experiment=?2, display_name=?3, state=?4, "
                     "created_at=?5, ended_at=?6, exit_code=?7, compute=?8, tags=?9");
    upsert.bind(1, record.id);
    upsert.bind(2, record.experiment);
    upsert.bind(3, record.display_name);
    upsert.bind(4, to_string(record.state));
    upsert.bind(5, record.created_at);
    upsert.bind(6, record.ended_at);
    if (record.exit_code) {
      upsert.bind(7, static_cast<std::int64_t>(*record.exit_code));
    } else {
      upsert.bind_null(7);
    }
    upsert.bind(8, record.compute);
    nlohmann::ordered_json tags = nlohmann::ordered_json::object();
    for (const auto& [k, v] : record.tags) tags[k] = v;
    upsert.bind(9, tags.dump());
    upsert.step();
    Statement clear(m_db, "DELETE FROM run_tags WHERE run_id = ?1");
    clear.bind(1, record.id);
    clear.step();
    for (const auto& [k, v] : record.tags) {
      Statement tag(m_db, "INSERT OR REPLACE INTO run_tags (run_id, key, value) VALUES (?1, ?2, ?3)");
      tag.bind(1, record.id);
      tag.bind(2, k);
      tag.bind(3, v);
      tag.step();
    }
    execute(m_db, "COMMIT");
  } catch (...) {
    sqlite3_exec(m_db, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

RunRecord RunStore::load(const std::string& id) const {
  fs::path path = record_path(id);
  std::error_code error;
  if (!fs::exists(path, error)) {
    throw util::InputError(fmt::format("no run {} in workspace {}", id, m_workspace.root().string()));
  }
  std::string text = util::read_file(path);
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw util::InfraError(fmt::format("{} is corrupt: {}", path.string(), e.what()));
  }
  try {
    return run_record_from_json(json);
  } catch (const util::Error& e) {
    throw util::InfraError(fmt::format("{}: {}", path.string(), e.what()));
  }
}

std::string RunStore::resolve(const std::string& id_or_prefix) const {
  if (id_or_prefix.empty() || id_or_prefix.size() > 128 ||
      id_or_prefix.find_first_of("/\\") != std::string::npos || id_or_prefix[0] == '.') {
    throw util::InputError(fmt::format("invalid run id '{}'", id_or_prefix));
  }
  if (util::is_valid_name(id_or_prefix) && fs::exists(record_path(id_or_prefix))) {
    return id_or_prefix;
  }
  // A prefix: ids sort lexically, so a range scan finds the candidates.
  Statement query(m_db, "SELECT id FROM runs WHERE id >= ?1 AND id < ?2 ORDER BY id LIMIT 11");
  query.bind(1, id_or_prefix);
  query.bind(2, id_or_prefix + "\xff");
  std::vector<std::string> matches;
  while (query.step()) matches.push_back(query.text(0));
  if (matches.size() == 1) return matches[0];
  if (matches.empty()) {
    throw util::InputError(fmt::format("no run '{}' in workspace {} (amlrun runs list shows them)",
                                       id_or_prefix, m_workspace.root().string()));
  }
  std::string listed;
  for (std::size_t i = 0; i < matches.size() && i < 10; ++i) listed += "\n  " + matches[i];
  if (matches.size() > 10) listed += "\n  ...";
  throw util::InputError(fmt::format("run id prefix '{}' is ambiguous; it matches:{}", id_or_prefix,
                                     listed));
}

std::vector<IndexRow> RunStore::list(const RunFilter& filter) const {
  std::string sql =
      "SELECT id, experiment, display_name, state, created_at, ended_at, exit_code, compute "
      "FROM runs WHERE 1=1";
  if (!filter.experiment.empty()) sql += " AND experiment = ?1";
  if (filter.state) sql += " AND state = ?2";
  for (std::size_t i = 0; i < filter.tags.size(); ++i) {
    sql += fmt::format(
        " AND id IN (SELECT run_id FROM run_tags WHERE key = ?{} AND value = ?{})", 10 + 2 * i,
        11 + 2 * i);
  }
  sql += " ORDER BY created_at DESC, id DESC LIMIT ?3";
  Statement query(m_db, sql.c_str());
  if (!filter.experiment.empty()) query.bind(1, filter.experiment);
  if (filter.state) query.bind(2, to_string(*filter.state));
  query.bind(3, static_cast<std::int64_t>(filter.limit));
  for (std::size_t i = 0; i < filter.tags.size(); ++i) {
    query.bind(static_cast<int>(10 + 2 * i), filter.tags[i].first);
    query.bind(static_cast<int>(11 + 2 * i), filter.tags[i].second);
  }
  std::vector<IndexRow> rows;
  while (query.step()) {
    IndexRow row;
    row.id = query.text(0);
    row.experiment = query.text(1);
    row.display_name = query.text(2);
    row.state = query.text(3);
    row.created_at = query.text(4);
    row.ended_at = query.text(5);
    if (!query.is_null(6)) row.exit_code = static_cast<int>(query.integer(6));
    row.compute = query.text(7);
    rows.push_back(row);
  }
  return rows;
}

void RunStore::transition(RunRecord& record, RunState next) {
  if (!can_transition(record.state, next)) {
    throw util::InfraError(fmt::format("run {}: cannot go from {} to {}", record.id,
                                       to_string(record.state), to_string(next)));
  }
  std::string now = util::utc_iso8601(util::Clock::now());
  record.state = next;
  record.history.push_back({next, now});
  if (next == RunState::running) record.started_at = now;
  if (is_terminal(next)) record.ended_at = now;
  save(record);
}

}  // namespace amlrun::store
