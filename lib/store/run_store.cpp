#include "lib/store/run_store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <algorithm>
#include <cerrno>

#include "lib/store/database.hpp"
#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/names.hpp"
#include "lib/util/random.hpp"
#include "lib/util/strings.hpp"
#include "lib/util/tags.hpp"
#include "lib/util/time.hpp"
#include "lib/util/utf8.hpp"

namespace amlrun::store {

RunStore::RunStore(const workspace::Workspace& workspace)
    : m_workspace(workspace), m_db(m_workspace.index_path()) {}

RunStore::~RunStore() = default;

std::string RunStore::new_run_id(const std::string& experiment) {
  // Keep the id a valid name (at most 128 characters) and one MLflow's
  // client takes as MLFLOW_RUN_ID (letters, digits, '_' and '-': no '.'), so
  // the run id is the MLflow run id with no translation between the two.
  std::string prefix = experiment.substr(0, 100);
  std::replace(prefix.begin(), prefix.end(), '.', '-');
  return fmt::format("{}_{}_{}", prefix, util::utc_compact(util::Clock::now()),
                     util::random_hex(4));
}

util::FileLock RunStore::create(RunRecord& record) {
  // Checked before the directory exists: a record that cannot be written
  // must leave nothing behind.
  for (const auto& tag : record.tags) util::check_tag(tag);
  if (auto invalid = util::find_invalid_utf8(to_json(record))) {
    throw util::InputError(fmt::format(
        "cannot record the run: its {} {} is not valid UTF-8; amlrun stores text as UTF-8 "
        "(rename the file or folder, or write the text as UTF-8)",
        invalid->path, util::printable(invalid->text)));
  }
  fs::path dir = run_dir(record.id);
  if (::mkdir(dir.c_str(), 0755) != 0) {
    if (errno == EEXIST) throw util::InfraError(fmt::format("run {} already exists", record.id));
    util::throw_errno(fmt::format("cannot create {}", dir.string()));
  }
  util::FileLock lock = util::FileLock::acquire(lock_path(record.id));
  record.state = RunState::queued;
  record.created_at = util::utc_iso8601(util::Clock::now());
  record.history = {{RunState::queued, record.created_at}};
  save(record);
  return lock;
}

namespace {

// Serialises read-modify-writes of one run's record across processes (the
// supervisor's transitions against `amlrun runs tag`): flock on the run
// directory, so no extra file is needed and a dead holder never blocks.
class RecordLock {
 public:
  explicit RecordLock(const fs::path& dir)
      : m_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) {
    if (!m_fd) util::throw_errno(fmt::format("cannot open {}", dir.string()));
    while (::flock(m_fd.get(), LOCK_EX) != 0) {
      if (errno != EINTR) util::throw_errno(fmt::format("cannot lock {}", dir.string()));
    }
  }

 private:
  util::UniqueFd m_fd;  // closing it drops the lock
};

// The tags of the record on disk when they are newer than `record`'s
// (someone ran `amlrun runs tag` since `record` was loaded).
std::optional<RunRecord> newer_tags_on_disk(const fs::path& path, const RunRecord& record) {
  try {
    auto json = nlohmann::json::parse(util::read_file(path));
    if (json.value("tags_revision", 0) <= record.tags_revision) return std::nullopt;
    return run_record_from_json(json);
  } catch (const std::exception&) {
    return std::nullopt;  // missing or damaged: the record being saved replaces it
  }
}

}  // namespace

void RunStore::save(const RunRecord& record) {
  RecordLock lock(run_dir(record.id));
  if (auto on_disk = newer_tags_on_disk(record_path(record.id), record)) {
    RunRecord merged = record;
    merged.tags = on_disk->tags;
    merged.params = on_disk->params;
    merged.models = on_disk->models;
    merged.tags_revision = on_disk->tags_revision;
    write_record(merged);
  } else {
    write_record(record);
  }
}

void RunStore::write_record(const RunRecord& record) {
  util::write_file_atomic(record_path(record.id), to_json(record).dump(2) + "\n");
  index(record);
}

RunRecord RunStore::update_tags(const std::string& id,
                                const std::vector<std::pair<std::string, std::string>>& set,
                                const std::vector<std::string>& remove) {
  for (const auto& tag : set) util::check_tag(tag);
  for (const auto& key : remove) util::check_tag_key(key);
  RecordLock lock(run_dir(id));
  RunRecord record = load(id);
  for (const auto& key : remove) {
    std::erase_if(record.tags, [&](const auto& tag) { return tag.first == key; });
  }
  for (const auto& [key, value] : set) {
    // A reference of its own: clang before 16 cannot capture a structured
    // binding in a lambda.
    const std::string& wanted = key;
    auto found = std::find_if(record.tags.begin(), record.tags.end(),
                              [&](const auto& tag) { return tag.first == wanted; });
    if (found != record.tags.end()) {
      found->second = value;
    } else {
      record.tags.emplace_back(key, value);
    }
  }
  // Sorted, as every later load returns them (run.json is read unordered).
  std::sort(record.tags.begin(), record.tags.end());
  ++record.tags_revision;
  write_record(record);
  return record;
}

RunRecord RunStore::add_params(const std::string& id,
                               const std::vector<std::pair<std::string, std::string>>& params) {
  RecordLock lock(run_dir(id));
  RunRecord record = load(id);
  bool changed = false;
  for (const auto& [key, value] : params) {
    const std::string& wanted = key;  // clang before 16 cannot capture a binding
    auto found = std::find_if(record.params.begin(), record.params.end(),
                              [&](const auto& param) { return param.first == wanted; });
    if (found == record.params.end()) {
      record.params.emplace_back(key, value);
      changed = true;
    } else if (found->second != value) {
      throw util::InputError(fmt::format(
          "parameter '{}' of run {} is already '{}'; a parameter is logged once and cannot be "
          "changed to '{}' (log it under another name)",
          key, id, found->second, value));
    }
  }
  if (!changed) return record;
  std::sort(record.params.begin(), record.params.end());
  ++record.tags_revision;
  write_record(record);
  return record;
}

RunRecord RunStore::add_model(const std::string& id, const std::string& model_id,
                              const std::string& name) {
  RecordLock lock(run_dir(id));
  RunRecord record = load(id);
  record.models.emplace_back(model_id, name);
  // Kept by a writer holding an older copy, as tags and params are.
  ++record.tags_revision;
  write_record(record);
  return record;
}

void RunStore::reindex(const RunRecord& record) {
  index(record);
}

void RunStore::unindex(const std::string& id) {
  Transaction transaction(m_db);
  for (const char* sql :
       {"DELETE FROM runs WHERE id = ?1", "DELETE FROM run_tags WHERE run_id = ?1",
        "DELETE FROM run_params WHERE run_id = ?1"}) {
    Statement remove(m_db, sql);
    remove.bind(1, id);
    remove.step();
  }
  transaction.commit();
}

void RunStore::index(const RunRecord& record) {
  // The file's stat as indexed: a listing compares it to notice a record
  // that changed (or was damaged) behind the index's back.
  struct stat file {};
  std::int64_t mtime_ns = 0;
  std::int64_t size = -1;
  std::int64_t inode = 0;
  if (::stat(record_path(record.id).c_str(), &file) == 0) {
    mtime_ns = file.st_mtim.tv_sec * 1000000000LL + file.st_mtim.tv_nsec;
    size = file.st_size;
    inode = static_cast<std::int64_t>(file.st_ino);
  }
  Transaction transaction(m_db);
  Statement upsert(m_db,
                   "INSERT INTO runs (id, experiment, display_name, state, created_at, ended_at, "
                   "exit_code, compute, tags, record_mtime_ns, record_size, record_inode, "
                   "parent_id, params_indexed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
                   "?11, ?12, ?13, 1) "
                   "ON CONFLICT(id) DO UPDATE SET experiment=?2, display_name=?3, state=?4, "
                   "created_at=?5, ended_at=?6, exit_code=?7, compute=?8, tags=?9, "
                   "record_mtime_ns=?10, record_size=?11, record_inode=?12, parent_id=?13, "
                   "params_indexed=1");
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
  upsert.bind(9, tags_column(record.tags));
  upsert.bind(10, mtime_ns);
  upsert.bind(11, size);
  upsert.bind(12, inode);
  upsert.bind(13, record.parent_id);
  upsert.step();
  Statement clear(m_db, "DELETE FROM run_tags WHERE run_id = ?1");
  clear.bind(1, record.id);
  clear.step();
  Statement tag(m_db, "INSERT OR REPLACE INTO run_tags (run_id, key, value) VALUES (?1, ?2, ?3)");
  for (const auto& [k, v] : record.tags) {
    tag.reset();
    tag.bind(1, record.id);
    tag.bind(2, k);
    tag.bind(3, v);
    tag.step();
  }
  Statement clear_params(m_db, "DELETE FROM run_params WHERE run_id = ?1");
  clear_params.bind(1, record.id);
  clear_params.step();
  Statement param(m_db,
                  "INSERT OR REPLACE INTO run_params (run_id, key, value) VALUES (?1, ?2, ?3)");
  for (const auto& [k, v] : record.params) {
    param.reset();
    param.bind(1, record.id);
    param.bind(2, k);
    param.bind(3, v);
    param.step();
  }
  transaction.commit();
}

int RunStore::index_params_of_older_runs() {
  std::vector<std::string> ids;
  {
    Statement older(m_db, "SELECT id FROM runs WHERE params_indexed = 0");
    while (older.step()) ids.push_back(older.text(0));
  }
  int indexed = 0;
  for (const auto& id : ids) {
    try {
      index(load(id));
      ++indexed;
    } catch (const util::Error&) {
      // Missing or corrupt: the listing marks it, doctor reports it.
    }
  }
  return indexed;
}

RunRecord RunStore::load(const std::string& id) const {
  fs::path path = record_path(id);
  std::error_code error;
  if (!fs::exists(path, error)) {
    throw util::InputError(
        fmt::format("no run {} in workspace {}", id, m_workspace.root().string()));
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
  throw util::InputError(
      fmt::format("run id prefix '{}' is ambiguous; it matches:{}", id_or_prefix, listed));
}

namespace {

// The WHERE clause of a filter (from " WHERE 1=1"), and its bindings: ?1
// experiment, ?2 state, ?4 parent, tags and params from ?10.
std::string filter_condition(const RunFilter& filter) {
  std::string sql = " WHERE 1=1";
  if (!filter.experiment.empty()) sql += " AND experiment = ?1";
  if (filter.state) sql += " AND state = ?2";
  if (filter.parent) sql += " AND parent_id = ?4";
  for (std::size_t i = 0; i < filter.tags.size(); ++i) {
    sql += fmt::format(" AND id IN (SELECT run_id FROM run_tags WHERE key = ?{} AND value = ?{})",
                       10 + 2 * i, 11 + 2 * i);
  }
  // Params bind after the tags (two numbers each, from ?10).
  const std::size_t first_param = 10 + 2 * filter.tags.size();
  for (std::size_t i = 0; i < filter.params.size(); ++i) {
    sql += fmt::format(
        " AND id IN (SELECT run_id FROM run_params WHERE key = ?{}{})", first_param + 2 * i,
        filter.params[i].second ? fmt::format(" AND value = ?{}", first_param + 2 * i + 1)
                                : std::string());
  }
  return sql;
}

void bind_filter(Statement& query, const RunFilter& filter) {
  if (!filter.experiment.empty()) query.bind(1, filter.experiment);
  if (filter.state) query.bind(2, to_string(*filter.state));
  if (filter.parent) query.bind(4, *filter.parent);
  for (std::size_t i = 0; i < filter.tags.size(); ++i) {
    query.bind(static_cast<int>(10 + 2 * i), filter.tags[i].first);
    query.bind(static_cast<int>(11 + 2 * i), filter.tags[i].second);
  }
  const std::size_t first_param = 10 + 2 * filter.tags.size();
  for (std::size_t i = 0; i < filter.params.size(); ++i) {
    query.bind(static_cast<int>(first_param + 2 * i), filter.params[i].first);
    if (filter.params[i].second) {
      query.bind(static_cast<int>(first_param + 2 * i + 1), *filter.params[i].second);
    }
  }
}

}  // namespace

std::int64_t RunStore::count(const RunFilter& filter) const {
  std::string sql = "SELECT COUNT(*) FROM runs" + filter_condition(filter);
  Statement query(m_db, sql.c_str());
  bind_filter(query, filter);
  return query.step() ? query.integer(0) : 0;
}

std::vector<IndexRow> RunStore::list(const RunFilter& filter) const {
  std::string sql =
      "SELECT id, experiment, display_name, state, created_at, ended_at, exit_code, compute, "
      "record_mtime_ns, record_size, tags, record_inode, parent_id FROM runs" +
      filter_condition(filter) + " ORDER BY created_at DESC, id DESC LIMIT ?3 OFFSET ?5";
  Statement query(m_db, sql.c_str());
  bind_filter(query, filter);
  query.bind(3, static_cast<std::int64_t>(filter.limit > 0 ? filter.limit : -1));
  query.bind(5, static_cast<std::int64_t>(std::max(filter.offset, 0)));
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
    row.record_mtime_ns = query.integer(8);
    row.record_size = query.integer(9);
    row.tags = tags_from_column(query.text(10));
    row.record_inode = query.integer(11);
    row.parent_id = query.text(12);
    rows.push_back(row);
  }
  return rows;
}

void RunStore::transition(RunRecord& record, RunState next, std::optional<util::TimePoint> at) {
  if (!can_transition(record.state, next)) {
    throw util::InfraError(fmt::format("run {}: cannot go from {} to {}", record.id,
                                       to_string(record.state), to_string(next)));
  }
  std::string now = util::utc_iso8601(at.value_or(util::Clock::now()));
  record.state = next;
  record.history.push_back({next, now});
  // The first start: a requeued job that runs again keeps it.
  if (next == RunState::running && record.started_at.empty()) record.started_at = now;
  if (is_terminal(next)) record.ended_at = now;
  save(record);
}

}  // namespace amlrun::store
