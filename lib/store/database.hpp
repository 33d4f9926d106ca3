#pragma once
// The workspace index (.amlrun/index.db): one SQLite connection per process,
// its schema and migrations, and small RAII helpers for statements and
// transactions. Every table of the index (runs, metrics, models) is created
// here, so the schema version in PRAGMA user_version has one owner.
#include <cstdint>
#include <filesystem>
#include <string>

struct sqlite3;
struct sqlite3_stmt;

namespace amlrun::store {

// 1: runs and run_tags. 2: run.json stat in runs (to notice a stale or
// corrupt record without reading it), metrics, models.
inline constexpr int k_index_schema_version = 2;

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

 private:
  std::filesystem::path m_path;
  sqlite3* m_db = nullptr;
};

// A prepared statement that finalises itself. Errors are util::InfraError
// ("run index: ...").
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
  sqlite3* m_db;
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
