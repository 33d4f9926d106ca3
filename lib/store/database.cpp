#include "lib/store/database.hpp"

#include <sqlite3.h>

#include <fmt/format.h>
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/time.hpp"

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
    // changed or damaged behind the index's back without reading it), and
    // metrics. (Until the registry owned its table, this step also created
    // `models`; the registry's first migration creates it if missing, so an
    // index replaying this step ends the same either way.)
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
)",
    // 3: run.json's inode too. An atomic rewrite is a new file, so the inode
    // tells a rewrite apart even when it has the old size and lands in the
    // same filesystem clock tick as the indexed one (a tag changed from
    // "38" to "39" twice within ~4 ms).
    R"(
ALTER TABLE runs ADD COLUMN record_inode INTEGER NOT NULL DEFAULT 0;
)",
    // 4: the parent of a child run (nested MLflow runs), for `runs list --parent`.
    R"(
ALTER TABLE runs ADD COLUMN parent_id TEXT NOT NULL DEFAULT '';
CREATE INDEX runs_by_parent ON runs(parent_id, created_at DESC);
)",
    // 5: the params of a run (MLflow's log_param), for `runs list --param`.
    // Runs indexed before have params_indexed 0: a listing that filters by
    // param indexes their params from run.json first (RunStore::
    // index_params_of_older_runs), once.
    R"(
CREATE TABLE run_params (
  run_id TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (run_id, key)
);
CREATE INDEX run_params_by_pair ON run_params(key, value);
ALTER TABLE runs ADD COLUMN params_indexed INTEGER NOT NULL DEFAULT 0;
)",
};
static_assert(std::size(k_migrations) == k_index_schema_version);

std::int64_t read_user_version(const Database& db) {
  Statement version(db, "PRAGMA user_version");
  version.step();
  return version.integer(0);
}

// The version of `owner`'s tables; 0 before its first migration.
std::int64_t read_owner_version(const Database& db, const char* owner) {
  Statement table(db,
                  "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = "
                  "'schema_versions'");
  if (!table.step()) return 0;
  Statement version(db, "SELECT version FROM schema_versions WHERE owner = ?1");
  version.bind(1, std::string(owner));
  return version.step() ? version.integer(0) : 0;
}

bool is_damage(int rc) {
  return (rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB;
}

}  // namespace

DamagedIndexError::DamagedIndexError(const std::filesystem::path& path, const std::string& detail)
    : util::InfraError(fmt::format(
          "the run index {} is damaged ({}); run amlrun doctor --repair: it sets the file aside "
          "and rebuilds the index from the run and model folders",
          path.string(), detail)),
      m_detail(detail) {}

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
  int rc = sqlite3_exec(m_db, sql, nullptr, nullptr, &error);
  if (rc != SQLITE_OK) {
    std::string message = error ? error : sqlite3_errstr(rc);
    sqlite3_free(error);
    if (is_damage(rc)) throw DamagedIndexError(m_path, message);
    throw util::InfraError(fmt::format("run index: {}", message));
  }
}

void Database::fail(int rc) const {
  std::string message = sqlite3_errmsg(m_db);
  if (is_damage(rc) || is_damage(sqlite3_extended_errcode(m_db))) {
    throw DamagedIndexError(m_path, message);
  }
  throw util::InfraError(fmt::format("run index: {}", message));
}

void Database::migrate(const char* owner, std::span<const char* const> migrations) const {
  auto wanted = static_cast<std::int64_t>(migrations.size());
  if (read_owner_version(*this, owner) == wanted) return;
  execute("BEGIN IMMEDIATE");
  try {
    std::int64_t found = read_owner_version(*this, owner);
    if (found > wanted) {
      throw util::InfraError(fmt::format(
          "the run index {} has version {} of the {} tables, newer than this amlrun understands "
          "({}); it was written by a newer amlrun: upgrade amlrun (the index was left untouched)",
          m_path.string(), found, owner, wanted));
    }
    execute(
        "CREATE TABLE IF NOT EXISTS schema_versions (owner TEXT PRIMARY KEY, version INTEGER NOT "
        "NULL)");
    for (std::int64_t version = found + 1; version <= wanted; ++version) {
      execute(migrations[static_cast<std::size_t>(version - 1)]);
    }
    Statement record(*this,
                     "INSERT OR REPLACE INTO schema_versions (owner, version) VALUES (?1, ?2)");
    record.bind(1, std::string(owner));
    record.bind(2, wanted);
    record.step();
    execute("COMMIT");
  } catch (...) {
    sqlite3_exec(m_db, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

std::optional<std::string> Database::damage() const {
  std::vector<std::string> problems;
  try {
    // quick_check: every page and b-tree, without the costlier index
    // cross-checks of integrity_check; a few problems are enough to say so.
    Statement check(*this, "PRAGMA quick_check(4)");
    while (check.step()) {
      // Rows may hold several lines, headed "*** in database main ***".
      std::string row = check.text(0);
      std::size_t start = 0;
      while (start <= row.size()) {
        std::size_t end = std::min(row.find('\n', start), row.size());
        std::string line = row.substr(start, end - start);
        if (!line.empty() && !line.starts_with("*** ")) problems.push_back(line);
        start = end + 1;
      }
    }
  } catch (const DamagedIndexError& error) {
    return error.detail();
  }
  if (problems.size() == 1 && problems[0] == "ok") return std::nullopt;
  if (problems.empty()) return std::string("quick_check returned nothing");
  std::string joined;
  for (std::size_t i = 0; i < problems.size() && i < 3; ++i) {
    joined += (i ? "; " : "") + problems[i];
  }
  return problems.size() > 3 ? joined + "; ..." : joined;
}

std::filesystem::path set_aside_damaged_index(const std::filesystem::path& index) {
  namespace fs = std::filesystem;
  std::string base = fmt::format("{}.damaged-{}", index.filename().string(),
                                 util::utc_compact(util::Clock::now()));
  fs::path target = index.parent_path() / base;
  std::error_code error;
  for (int n = 2; fs::exists(fs::symlink_status(target, error)); ++n) {
    target = index.parent_path() / fmt::format("{}-{}", base, n);
  }
  // The write-ahead log goes with its database (it may hold the newest
  // pages); the shared-memory file is only a cache of the log.
  for (const char* suffix : {"-wal", "-shm", ""}) {
    fs::path from = index.string() + suffix;
    fs::path to = target.string() + suffix;
    if (!fs::exists(fs::symlink_status(from, error))) continue;
    if (::rename(from.c_str(), to.c_str()) != 0) {
      util::throw_errno(
          fmt::format("cannot set the damaged index {} aside as {}", from.string(), to.string()));
    }
  }
  util::fsync_directory(index.parent_path());
  return target;
}

std::string tags_column(const std::vector<util::Tag>& tags) {
  return util::tags_to_json(tags).dump();
}

std::vector<util::Tag> tags_from_column(const std::string& text) {
  try {
    return util::tags_from_json(nlohmann::ordered_json::parse(text));
  } catch (const nlohmann::json::exception&) {
    return {};
  }
}

std::int64_t Database::last_insert_rowid() const {
  return sqlite3_last_insert_rowid(m_db);
}

Statement::Statement(const Database& db, const char* sql) : m_db(db) {
  int rc = sqlite3_prepare_v2(m_db.handle(), sql, -1, &m_statement, nullptr);
  if (rc != SQLITE_OK) m_db.fail(rc);
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
  m_db.fail(rc);
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
