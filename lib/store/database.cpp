#include "lib/store/database.hpp"

#include <sqlite3.h>

#include <fmt/format.h>
#include <cmath>

#include "lib/util/error.hpp"

namespace amlrun::store {

namespace {

// migrations[v - 1] takes an index from version v - 1 to v. A new table or
// column is a new entry here and a bump of k_index_schema_version; entries
// are never edited once released, since old indexes replay them.
const char* const k_migrations[] = {
    // 1: runs and their tags.
    R"(
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
)",
    // 2: the stat of run.json when it was indexed (a listing notices a record
    // changed or damaged behind the index's back without reading it), metrics
    // and the model registry.
    R"(
ALTER TABLE runs ADD COLUMN record_mtime_ns INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN record_size INTEGER NOT NULL DEFAULT -1;
CREATE TABLE metric_series (
  series_id INTEGER PRIMARY KEY,
  run_id TEXT NOT NULL,
  name TEXT NOT NULL,
  count INTEGER NOT NULL,
  non_finite INTEGER NOT NULL,
  last_step INTEGER NOT NULL,
  last_value REAL,
  min_value REAL,
  max_value REAL,
  UNIQUE (run_id, name)
);
CREATE TABLE metric_points (
  series_id INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  rank INTEGER NOT NULL,
  step INTEGER NOT NULL,
  value REAL,
  PRIMARY KEY (series_id, seq)
) WITHOUT ROWID;
CREATE TABLE metric_sources (
  run_id TEXT NOT NULL,
  rank INTEGER NOT NULL,
  offset INTEGER NOT NULL,
  line INTEGER NOT NULL,
  in_long_line INTEGER NOT NULL,
  malformed INTEGER NOT NULL,
  bad_name INTEGER NOT NULL,
  backwards INTEGER NOT NULL,
  first_problem TEXT NOT NULL,
  PRIMARY KEY (run_id, rank)
);
CREATE TABLE models (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  version TEXT NOT NULL,
  version_number INTEGER,
  created_at TEXT NOT NULL,
  description TEXT NOT NULL,
  tags TEXT NOT NULL,
  source_run TEXT NOT NULL,
  source_path TEXT NOT NULL,
  files INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  manifest_sha256 TEXT NOT NULL,
  UNIQUE (name, version)
);
)",
};
static_assert(std::size(k_migrations) == k_index_schema_version);

std::int64_t read_user_version(const Database& db) {
  Statement version(db, "PRAGMA user_version");
  version.step();
  return version.integer(0);
}

}  // namespace

Database::Database(const std::filesystem::path& path) : m_path(path) {
  std::string name = path.string();
  if (sqlite3_open_v2(name.c_str(), &m_db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string message = m_db ? sqlite3_errmsg(m_db) : "out of memory";
    sqlite3_close(m_db);
    m_db = nullptr;
    throw util::InfraError(fmt::format("cannot open the run index {}: {}", name, message));
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
    // read the version first and take the lock only to migrate or refuse.
    std::int64_t found = read_user_version(*this);
    if (found != k_index_schema_version) {
      execute("PRAGMA journal_mode=WAL");
      execute("BEGIN IMMEDIATE");
      found = read_user_version(*this);
      if (found > k_index_schema_version) {
        execute("ROLLBACK");
        throw util::InfraError(fmt::format(
            "the run index {} has schema version {}, newer than this amlrun understands ({}); it "
            "was written by a newer amlrun: upgrade amlrun (the index was left untouched)",
            name, found, k_index_schema_version));
      }
      try {
        for (std::int64_t version = found + 1; version <= k_index_schema_version; ++version) {
          execute(k_migrations[version - 1]);
        }
        execute(fmt::format("PRAGMA user_version = {}", k_index_schema_version).c_str());
        execute("COMMIT");
      } catch (...) {
        sqlite3_exec(m_db, "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
      }
    }
    execute("PRAGMA synchronous=NORMAL");
  } catch (...) {
    sqlite3_close(m_db);
    m_db = nullptr;
    throw;
  }
}

Database::~Database() {
  sqlite3_close(m_db);
}

void Database::execute(const char* sql) const {
  char* error = nullptr;
  if (sqlite3_exec(m_db, sql, nullptr, nullptr, &error) != SQLITE_OK) {
    std::string message = error ? error : "unknown error";
    sqlite3_free(error);
    throw util::InfraError(fmt::format("run index: {}", message));
  }
}

std::int64_t Database::last_insert_rowid() const {
  return sqlite3_last_insert_rowid(m_db);
}

Statement::Statement(const Database& db, const char* sql) : m_db(db.handle()) {
  if (sqlite3_prepare_v2(m_db, sql, -1, &m_statement, nullptr) != SQLITE_OK) {
    throw util::InfraError(fmt::format("run index: {}", sqlite3_errmsg(m_db)));
  }
}

Statement::~Statement() {
  sqlite3_finalize(m_statement);
}

void Statement::bind(int index, const std::string& value) {
  sqlite3_bind_text(m_statement, index, value.c_str(), static_cast<int>(value.size()),
                    SQLITE_TRANSIENT);
}

void Statement::bind(int index, std::int64_t value) {
  sqlite3_bind_int64(m_statement, index, value);
}

void Statement::bind(int index, double value) {
  if (std::isnan(value)) {
    sqlite3_bind_null(m_statement, index);
  } else {
    sqlite3_bind_double(m_statement, index, value);
  }
}

void Statement::bind_null(int index) {
  sqlite3_bind_null(m_statement, index);
}

bool Statement::step() {
  int rc = sqlite3_step(m_statement);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  throw util::InfraError(fmt::format("run index: {}", sqlite3_errmsg(m_db)));
}

void Statement::reset() {
  sqlite3_reset(m_statement);
}

std::string Statement::text(int column) const {
  const unsigned char* value = sqlite3_column_text(m_statement, column);
  return value ? reinterpret_cast<const char*>(value) : "";
}

bool Statement::is_null(int column) const {
  return sqlite3_column_type(m_statement, column) == SQLITE_NULL;
}

std::int64_t Statement::integer(int column) const {
  return sqlite3_column_int64(m_statement, column);
}

double Statement::real(int column) const {
  return sqlite3_column_double(m_statement, column);
}

Transaction::Transaction(const Database& db) : m_db(db) {
  m_db.execute("BEGIN IMMEDIATE");
}

Transaction::~Transaction() {
  if (!m_done) sqlite3_exec(m_db.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
}

void Transaction::commit() {
  m_db.execute("COMMIT");
  m_done = true;
}

}  // namespace amlrun::store
