#pragma once
// The workspace index (.amlrun/index.db): one SQLite connection per process,
// the run store's schema and migrations, and small RAII helpers for
// statements and transactions.
//
// The run store's tables (runs, run_tags, metric_*) are versioned by PRAGMA
// user_version. Other modules that keep tables in the index (the model
// registry) own their schema: they pass their migrations to
// Database::migrate, which versions each owner in the schema_versions table.
//
// A damaged index file (not a database, or pages that do not read back) is
// a DamagedIndexError from any call, naming the file and `amlrun doctor
// --repair`, which sets the file aside and rebuilds the index from the run
// and model folders.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "lib/util/error.hpp"
#include "lib/util/tags.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace amlrun::store {

// 1: runs and run_tags. 2: run.json stat in runs (to notice a stale or
// corrupt record without reading it), metrics. 3: run.json's inode. 4: the
// parent of a child run. 5: params (run_params).
inline constexpr int k_index_schema_version = 5;

// The index file is damaged: SQLite says it is not a database, or that its
// pages are malformed. what() names the file and says to run `amlrun doctor
// --repair`; detail() is SQLite's own word.
class DamagedIndexError : public util::InfraError {
 public:
  DamagedIndexError(const std::filesystem::path& path, const std::string& detail);
  const std::string& detail() const { return m_detail; }

 private:
  std::string m_detail;
};

class Database {
 public:
  // Opens (creating if needed) and migrates the index; refuses an index written
  // by a newer schema, naming both versions.
  explicit Database(const std::filesystem::path& path);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  sqlite3* handle() const { return m_db; }
  const std::filesystem::path& path() const { return m_path; }
  void execute(const char* sql) const;
  // The rowid of the last INSERT on this connection.
  std::int64_t last_insert_rowid() const;

  // Brings the tables of `owner` ("models") to version migrations.size():
  // migrations[v - 1] takes them from version v - 1 to v, in one transaction
  // with the new version. Refuses tables written by a newer amlrun, naming
  // both versions. Cheap when nothing is to do (one read, no lock).
  void migrate(const char* owner, std::span<const char* const> migrations) const;

  // What SQLite's quick_check finds wrong with the file (damaged pages,
  // broken indexes), or nullopt when it reads back whole. Reads every page:
  // for `amlrun doctor`, not for every command.
  std::optional<std::string> damage() const;

  // Throws the error for SQLite result `rc` of this connection: a
  // DamagedIndexError for a damaged file, else InfraError "run index: ...".
  [[noreturn]] void fail(int rc) const;

 private:
  std::filesystem::path m_path;
  sqlite3* m_db = nullptr;
};

// Renames a damaged index (and its -wal and -shm files) to
// "index.db.damaged-<utc yyyymmddThhmmss>" beside it, so it is kept for a
// look but out of the way of a fresh one; returns the new path.
std::filesystem::path set_aside_damaged_index(const std::filesystem::path& index);

// The tags column of the runs and models tables: a JSON object of strings,
// in the tags' order. Read back, a damaged cell gives no tags (the files
// the index is rebuilt from hold them).
std::string tags_column(const std::vector<util::Tag>& tags);
std::vector<util::Tag> tags_from_column(const std::string& text);

// A prepared statement that finalises itself. Errors are util::InfraError
// ("run index: ...") or DamagedIndexError.
class Statement {
 public:
  Statement(const Database& db, const char* sql);
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  void bind(int index, const std::string& value);
  void bind(int index, std::int64_t value);
  void bind(int index, double value);  // NaN is stored as NULL (SQLite has no NaN)
  void bind_null(int index);
  // true while rows come; false when done.
  bool step();
  // Ready to bind and step again (bindings are kept until rebound).
  void reset();
  std::string text(int column) const;
  bool is_null(int column) const;
  std::int64_t integer(int column) const;
  double real(int column) const;

 private:
  const Database& m_db;
  sqlite3_stmt* m_statement = nullptr;
};

// BEGIN IMMEDIATE (the write lock up front, so two writers never deadlock on
// an upgrade); rolled back unless commit() was called.
class Transaction {
 public:
  explicit Transaction(const Database& db);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit();

 private:
  const Database& m_db;
  bool m_done = false;
};

}  // namespace amlrun::store
