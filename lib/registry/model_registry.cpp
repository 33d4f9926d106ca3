#include "lib/registry/model_registry.hpp"

#include <sys/stat.h>

#include <fmt/format.h>
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <map>
#include <nlohmann/json.hpp>

#include "lib/artifacts/artifact_path.hpp"
#include "lib/store/database.hpp"
#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/hash.hpp"
#include "lib/util/names.hpp"
#include "lib/util/random.hpp"
#include "lib/util/strings.hpp"
#include "lib/util/tags.hpp"
#include "lib/util/time.hpp"
#include "lib/util/utf8.hpp"

namespace amlrun::registry {

namespace {

constexpr const char* k_manifest = "manifest.json";
constexpr const char* k_files = "files";

std::optional<std::int64_t> version_number(const std::string& version) {
  std::int64_t number = 0;
  if (version.empty() || version.size() > 18 || (version.size() > 1 && version[0] == '0')) {
    return std::nullopt;
  }
  auto [end, error] = std::from_chars(version.data(), version.data() + version.size(), number);
  if (error != std::errc() || end != version.data() + version.size()) return std::nullopt;
  return number;
}

// The registry's tables in the index, owned and migrated here
// (store::Database::migrate); entries are never edited once released.
const char* const k_migrations[] = {
    // 1: every registered version, with the sha256 of its manifest. "IF NOT
    // EXISTS": indexes from before the registry owned its table have it.
    R"(
CREATE TABLE IF NOT EXISTS models (
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

const char* k_columns =
    "name, version, created_at, description, tags, source_run, source_path, files, bytes, "
    "manifest_sha256";

ModelVersion read_row(const store::Statement& row) {
  ModelVersion v;
  v.name = row.text(0);
  v.version = row.text(1);
  v.created_at = row.text(2);
  v.description = row.text(3);
  v.tags = store::tags_from_column(row.text(4));
  v.source_run = row.text(5);
  v.source_path = row.text(6);
  v.files = static_cast<std::uint64_t>(row.integer(7));
  v.bytes = static_cast<std::uint64_t>(row.integer(8));
  v.manifest_sha256 = row.text(9);
  return v;
}

void insert_row(const store::Database& db, const ModelVersion& v) {
  store::Statement insert(
      db,
      "INSERT INTO models (name, version, version_number, created_at, description, tags, "
      "source_run, source_path, files, bytes, manifest_sha256) VALUES "
      "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
  insert.bind(1, v.name);
  insert.bind(2, v.version);
  if (auto number = version_number(v.version)) {
    insert.bind(3, *number);
  } else {
    insert.bind_null(3);
  }
  insert.bind(4, v.created_at);
  insert.bind(5, v.description);
  insert.bind(6, store::tags_column(v.tags));
  insert.bind(7, v.source_run);
  insert.bind(8, v.source_path);
  insert.bind(9, static_cast<std::int64_t>(v.files));
  insert.bind(10, static_cast<std::int64_t>(v.bytes));
  insert.bind(11, v.manifest_sha256);
  insert.step();
}

// Removes a staging folder unless it was moved into place.
class StagingDir {
 public:
  explicit StagingDir(fs::path path) : m_path(std::move(path)) { fs::create_directories(m_path); }
  ~StagingDir() {
    std::error_code error;
    if (!m_path.empty()) fs::remove_all(m_path, error);
  }
  const fs::path& path() const { return m_path; }
  void release() { m_path.clear(); }

 private:
  fs::path m_path;
};

// The folder of a model name, created for its first version and removed
// again (when still empty) if that version is not recorded after all.
class NameDir {
 public:
  explicit NameDir(fs::path path) : m_path(std::move(path)) {
    std::error_code error;
    m_created = fs::create_directories(m_path, error);
    if (error) {
      throw util::InfraError(fmt::format("cannot create {}: {}", m_path.string(), error.message()));
    }
  }
  ~NameDir() {
    std::error_code error;
    if (m_created) fs::remove(m_path, error);  // only when empty
  }
  void release() { m_created = false; }

 private:
  fs::path m_path;
  bool m_created = false;
};

// Stats a registered file, refusing anything but the regular file that was
// registered: a symbolic link put in its place (or in place of a folder on
// its way) is reported as such and never followed.
void check_stored_file(const fs::path& root, const std::string& relative, const std::string& label,
                       struct stat& st) {
  auto damaged = [&](const std::string& what) {
    return util::InfraError(
        fmt::format("{}: {} {}; the registry copy is damaged: register the model again", label,
                    relative, what));
  };
  fs::path walked = root;
  fs::path parts(relative);
  for (auto part = parts.begin(); part != parts.end(); ++part) {
    walked /= *part;
    bool last = std::next(part) == parts.end();
    if (::lstat(walked.c_str(), &st) != 0) {
      if (errno == ENOENT || errno == ENOTDIR) {
        throw damaged(fmt::format("is missing from the registry ({})", walked.string()));
      }
      throw util::InfraError(
          util::errno_message(fmt::format("{}: cannot read {}", label, walked.string()), errno));
    }
    if (S_ISLNK(st.st_mode)) {
      std::error_code error;
      std::string target = fs::read_symlink(walked, error).string();
      throw damaged(
          last ? fmt::format("was replaced by a symbolic link to {} ({}), which is never followed",
                             target, walked.string())
               : fmt::format("lies in {}, which was replaced by a symbolic link to {} (never "
                             "followed)",
                             walked.string(), target));
    }
    if (!last && !S_ISDIR(st.st_mode)) {
      throw damaged(
          fmt::format("is missing from the registry ({} is not a folder)", walked.string()));
    }
  }
  if (!S_ISREG(st.st_mode)) {
    throw damaged(fmt::format("is no longer a regular file in the registry ({})", walked.string()));
  }
}

// A registered file as its manifest describes it: there, a regular file
// (never a link), of the registered size. Its stat, for the copy's mode.
// A file's bytes against the manifest (download, and a job that uses them).
void check_sha256(const std::string& label, const ModelFile& file, const std::string& sha256) {
  if (sha256 != file.sha256) {
    throw util::InfraError(fmt::format(
        "{}: {} is damaged: its sha256 is {}, the manifest says {}; the registry copy was "
        "changed after registration: register the model again",
        label, file.path, sha256, file.sha256));
  }
}

struct stat check_file(const fs::path& root, const ModelFile& file, const std::string& label) {
  struct stat st {};
  check_stored_file(root, file.path, label, st);
  if (static_cast<std::uint64_t>(st.st_size) != file.size) {
    throw util::InfraError(
        fmt::format("{}: {} is damaged: it has {} bytes, the manifest says {}; the registry copy "
                    "was changed after registration: register the model again",
                    label, file.path, st.st_size, file.size));
  }
  return st;
}

// A manifest lists file names as JSON text, which must be UTF-8.
void check_file_name(const std::string& relative, const std::string& source_text) {
  if (util::first_invalid_utf8(relative) == std::string_view::npos) return;
  throw util::InputError(fmt::format(
      "cannot register {}: the name {} is not valid UTF-8; rename it (a model's manifest lists "
      "its files as UTF-8 text)",
      source_text, util::printable(relative)));
}

ModelVersion version_from_manifest(const nlohmann::json& manifest) {
  ModelVersion v;
  v.name = manifest.at("name").get<std::string>();
  v.created_at = manifest.value("created_at", "");
  v.description = manifest.value("description", "");
  if (manifest.contains("tags")) v.tags = util::tags_from_json(manifest["tags"]);
  const auto& source = manifest.at("source");
  v.source_run = source.value("run", "");
  v.source_path = source.value("path", "");
  for (const auto& file : manifest.at("files")) {
    ++v.files;
    v.bytes += file.at("size").get<std::uint64_t>();
  }
  return v;
}

[[noreturn]] void duplicate_version(const std::string& name, const std::string& version) {
  throw util::InputError(fmt::format(
      "model {} already has a version {}; give another --version, or leave it out for the next "
      "number",
      name, version));
}

nlohmann::ordered_json manifest_json(const ModelVersion& model,
                                     const std::vector<artifacts::CopiedFile>& files) {
  nlohmann::ordered_json manifest;
  manifest["format_version"] = 1;
  manifest["name"] = model.name;
  manifest["version"] = model.version;
  manifest["created_at"] = model.created_at;
  manifest["description"] = model.description;
  manifest["tags"] = util::tags_to_json(model.tags);
  manifest["source"] = {{"run", model.source_run}, {"path", model.source_path}};
  manifest["files"] = nlohmann::ordered_json::array();
  for (const auto& file : files) {
    manifest["files"].push_back(
        {{"path", file.relative}, {"size", file.size}, {"sha256", file.sha256}});
  }
  return manifest;
}

}  // namespace

std::string next_version(const std::vector<std::string>& existing) {
  std::int64_t highest = 0;
  for (const auto& version : existing) {
    if (auto number = version_number(version)) highest = std::max(highest, *number);
  }
  return std::to_string(highest + 1);
}

ModelRegistry::ModelRegistry(const store::RunStore& store) : m_store(store) {
  m_store.database().migrate("models", k_migrations);
}

fs::path ModelRegistry::models_dir() const {
  return m_store.workspace().models_dir();
}

fs::path ModelRegistry::version_dir(const std::string& name, const std::string& version) const {
  // Both are checked names: single, safe path components.
  check_model_name(name);
  check_model_version(version);
  return models_dir() / name / version;
}

ModelVersion ModelRegistry::register_model(
    const RegisterRequest& request,
    const std::function<void(const artifacts::Skipped&)>& on_skipped) {
  check_model_name(request.name);
  if (request.version) check_model_version(*request.version);
  // Everything the manifest will hold is checked before anything is written.
  util::check_utf8(request.description, "--description");
  for (const auto& tag : request.tags) util::check_tag(tag);

  // 1. What to copy, checked before anything is written.
  artifacts::CopyPlan plan;
  ModelVersion model;
  model.name = request.name;
  model.description = request.description;
  model.tags = request.tags;
  std::string source_text;
  if (!request.run_id.empty()) {
    auto record = m_store.load(request.run_id);
    if (!store::is_terminal(record.state)) {
      throw util::InputError(fmt::format(
          "run {} is {}: register a model once the run has ended (amlrun stream {} waits for it)",
          request.run_id, store::to_string(record.state), request.run_id));
    }
    fs::path root = m_store.run_dir(request.run_id) / "artifacts";
    auto path = artifacts::resolve_artifact_path(root, request.run_path, "--path", request.run_id);
    util::check_utf8(path.relative, "--path");
    artifacts::plan_tree(plan, root, path.source, "", fmt::format("run {}", request.run_id));
    model.source_run = request.run_id;
    model.source_path = path.relative;
    source_text = fmt::format("{} of run {}", path.relative, request.run_id);
  } else {
    std::error_code error;
    fs::path from = fs::absolute(request.from).lexically_normal();
    util::check_utf8(from.string(), "--from");
    auto status = fs::status(from, error);
    if (error || !fs::exists(status)) {
      throw util::InputError(
          fmt::format("--from {}: no such file or folder", request.from.string()));
    }
    fs::path canonical = fs::canonical(from, error);
    if (util::is_within(fs::canonical(m_store.workspace().root()), canonical)) {
      throw util::InputError(fmt::format(
          "--from {} is inside the workspace; register a run's files with --run ID --path ...",
          request.from.string()));
    }
    fs::path root = fs::is_directory(status) ? from : from.parent_path();
    artifacts::plan_tree(plan, root, from, fs::is_directory(status) ? "" : from.filename().string(),
                         from.string(), m_store.workspace().root());
    model.source_path = from.string();
    source_text = from.string();
  }
  if (request.version) {
    // Checked again under the lock; this only fails early, before copying.
    for (const auto& existing : versions(request.name)) {
      if (existing.version == *request.version) duplicate_version(request.name, *request.version);
    }
  }
  for (const auto& skipped : plan.skipped) on_skipped(skipped);
  if (plan.files.empty()) {
    throw util::InputError(fmt::format("nothing to register: {} holds no files", source_text));
  }
  for (const auto& file : plan.files) check_file_name(file.relative, source_text);
  for (const auto& directory : plan.directories) check_file_name(directory, source_text);

  // 2. Copy and hash into staging, outside the index's lock.
  fs::create_directories(models_dir() / ".staging");
  StagingDir staging(
      models_dir() / ".staging" /
      fmt::format("{}-{}", util::utc_compact(util::Clock::now()), util::random_hex(6)));
  artifacts::CopyOptions copy;
  copy.hash = true;
  copy.durable = true;  // the index will promise these bytes
  auto copied = artifacts::copy_tree(plan, staging.path() / k_files, copy);
  for (const auto& file : copied) {
    ++model.files;
    model.bytes += file.size;
  }

  // 3. Pick the version, move into place and record it, as one step under
  // the index's write lock.
  const store::Database& db = m_store.database();
  store::Transaction transaction(db);
  NameDir name_dir(models_dir() / model.name);
  std::vector<std::string> existing;
  {
    store::Statement query(db, "SELECT version FROM models WHERE name = ?1");
    query.bind(1, model.name);
    while (query.step()) existing.push_back(query.text(0));
  }
  if (request.version) {
    model.version = *request.version;
    if (std::find(existing.begin(), existing.end(), model.version) != existing.end()) {
      duplicate_version(model.name, model.version);
    }
    if (fs::exists(version_dir(model.name, model.version))) {
      throw util::InfraError(fmt::format(
          "{} exists but is not registered (left by an interrupted registration?); run amlrun "
          "doctor --repair",
          version_dir(model.name, model.version).string()));
    }
  } else {
    model.version = next_version(existing);
    // A folder without a row (an interrupted registration) keeps its number.
    while (fs::exists(version_dir(model.name, model.version))) {
      existing.push_back(model.version);
      model.version = next_version(existing);
    }
  }
  // Written now, so created_at follows the order versions are recorded in
  // (a rebuilt index orders them by it).
  model.created_at = util::utc_iso8601(util::Clock::now());
  std::string manifest_text = manifest_json(model, copied).dump(2) + "\n";
  util::write_file_atomic(staging.path() / k_manifest, manifest_text);
  model.manifest_sha256 = util::sha256_hex(manifest_text);
  fs::path target = version_dir(model.name, model.version);
  if (::rename(staging.path().c_str(), target.c_str()) != 0) {
    util::throw_errno(fmt::format("cannot move the staged model into {}", target.string()));
  }
  try {
    util::fsync_directory(target.parent_path());
    insert_row(db, model);
    transaction.commit();
  } catch (...) {
    // Not recorded: put it back where the staging guard removes it.
    // Best effort: if this fails too, doctor finds the unrecorded version.
    (void)::rename(target.c_str(), staging.path().c_str());
    throw;
  }
  staging.release();
  name_dir.release();
  return model;
}

std::vector<ModelName> ModelRegistry::names() const {
  store::Statement query(
      m_store.database(),
      "SELECT m.name, m.version, c.n, m.created_at FROM models m JOIN "
      "(SELECT name, MAX(seq) AS last, COUNT(*) AS n FROM models GROUP BY name) c "
      "ON m.seq = c.last ORDER BY m.name");
  std::vector<ModelName> out;
  while (query.step()) {
    out.push_back({query.text(0), query.text(1), query.integer(2), query.text(3)});
  }
  return out;
}

std::vector<ModelVersion> ModelRegistry::versions(const std::string& name) const {
  store::Statement query(
      m_store.database(),
      fmt::format("SELECT {} FROM models WHERE name = ?1 ORDER BY seq DESC", k_columns).c_str());
  query.bind(1, name);
  std::vector<ModelVersion> out;
  while (query.step()) out.push_back(read_row(query));
  return out;
}

ModelVersion ModelRegistry::find(const ModelRef& ref) const {
  auto all = versions(ref.name);
  if (all.empty()) {
    std::vector<std::string> known;
    for (const auto& name : names()) known.push_back(name.name);
    throw util::InputError(
        fmt::format("no model '{}' in the registry{}; amlrun model list shows them", ref.name,
                    util::did_you_mean_suffix(ref.name, known)));
  }
  if (ref.latest()) return all.front();
  for (const auto& version : all) {
    if (version.version == ref.version) return version;
  }
  std::vector<std::string> known;
  for (auto it = all.rbegin(); it != all.rend(); ++it) known.push_back(it->version);
  throw util::InputError(fmt::format("model {} has no version {}; its versions are {}", ref.name,
                                     ref.version, util::join(known, ", ")));
}

std::vector<ModelFile> ModelRegistry::manifest(const ModelVersion& version) const {
  fs::path path = version_dir(version.name, version.version) / k_manifest;
  std::string text;
  try {
    text = util::read_file(path);
  } catch (const util::Error&) {
    throw util::InfraError(fmt::format(
        "model {}:{}: {} is missing; the registry copy is damaged (amlrun doctor reports it)",
        version.name, version.version, path.string()));
  }
  if (util::sha256_hex(text) != version.manifest_sha256) {
    throw util::InfraError(fmt::format(
        "model {}:{}: {} was changed after registration (its sha256 does not match the index); "
        "the registry copy cannot be trusted: register the model again",
        version.name, version.version, path.string()));
  }
  std::vector<ModelFile> files;
  try {
    auto json = nlohmann::json::parse(text);
    for (const auto& file : json.at("files")) {
      files.push_back({file.at("path").get<std::string>(), file.at("size").get<std::uint64_t>(),
                       file.at("sha256").get<std::string>()});
    }
  } catch (const nlohmann::json::exception& error) {
    throw util::InfraError(
        fmt::format("{} is not a valid manifest: {}", path.string(), error.what()));
  }
  return files;
}

std::vector<artifacts::CopiedFile> ModelRegistry::download(
    const ModelVersion& version, const fs::path& destination,
    const std::function<void(const artifacts::CopyProgress&)>& progress) const {
  artifacts::check_destination_outside(destination, m_store.workspace().root());
  util::check_directory_path(destination, "the destination");
  auto files = manifest(version);
  fs::path root = version_dir(version.name, version.version) / k_files;
  std::string label = fmt::format("model {}:{}", version.name, version.version);
  artifacts::CopyPlan plan;
  std::map<std::string, const ModelFile*> expected;
  for (const auto& file : files) {
    fs::path source = util::safe_join(root, file.path, label);
    struct stat st = check_file(root, file, label);
    plan.files.push_back({source, file.path, file.size, static_cast<unsigned>(st.st_mode & 0777)});
    plan.total_bytes += file.size;
    expected[file.path] = &file;
  }
  artifacts::CopyOptions copy;
  copy.hash = true;
  copy.progress = progress;
  copy.check = [&](const artifacts::PlannedFile& planned, const std::string& sha256) {
    const ModelFile& file = *expected.at(planned.relative);
    check_sha256(label, file, sha256);
  };
  return artifacts::copy_tree(plan, destination, copy);
}

void ModelRegistry::check_files(const ModelVersion& version) const {
  fs::path root = version_dir(version.name, version.version) / k_files;
  std::string label = fmt::format("model {}:{}", version.name, version.version);
  for (const auto& file : manifest(version)) check_file(root, file, label);
}

void ModelRegistry::verify_files(const ModelVersion& version) const {
  fs::path root = files_dir(version.name, version.version);
  std::string label = fmt::format("model {}:{}", version.name, version.version);
  for (const auto& file : manifest(version)) {
    check_file(root, file, label);
    std::string sha256 = util::sha256_file(util::safe_join(root, file.path, label));
    check_sha256(label, file, sha256);
  }
}

fs::path ModelRegistry::files_dir(const std::string& name, const std::string& version) const {
  return version_dir(name, version) / k_files;
}

void ModelRegistry::remove(const std::string& name, const std::string& version) {
  find({name, version});  // InputError naming what exists
  const store::Database& db = m_store.database();
  fs::path dir = version_dir(name, version);
  fs::path trash = models_dir() / ".staging" / fmt::format("deleted-{}", util::random_hex(6));
  fs::create_directories(trash.parent_path());
  store::Transaction transaction(db);
  store::Statement remove(db, "DELETE FROM models WHERE name = ?1 AND version = ?2");
  remove.bind(1, name);
  remove.bind(2, version);
  remove.step();
  // Out of sight first, so the version never half-exists.
  bool moved = ::rename(dir.c_str(), trash.c_str()) == 0;
  try {
    transaction.commit();
  } catch (...) {
    if (moved) (void)::rename(trash.c_str(), dir.c_str());  // best effort; doctor sees the rest
    throw;
  }
  std::error_code error;
  fs::remove_all(trash, error);
  fs::remove(models_dir() / name, error);  // only when it is empty now
}

void ModelRegistry::reindex_from_manifests(
    const std::vector<std::pair<std::string, std::string>>& versions,
    const std::function<void(const std::string&, const std::string&, const std::string&)>&
        on_error) {
  std::vector<ModelVersion> found;
  for (const auto& [name, version] : versions) {
    fs::path path = version_dir(name, version) / k_manifest;
    try {
      std::string text = util::read_file(path);
      ModelVersion model = version_from_manifest(nlohmann::json::parse(text));
      model.name = name;
      model.version = version;
      model.manifest_sha256 = util::sha256_hex(text);
      found.push_back(std::move(model));
    } catch (const std::exception& error) {
      on_error(name, version,
               fmt::format("{} is not a valid manifest: {}", path.string(), error.what()));
    }
  }
  // Recorded in the order they were first registered, so @latest is again
  // the version registered last.
  std::stable_sort(found.begin(), found.end(),
                   [](const auto& a, const auto& b) { return a.created_at < b.created_at; });
  store::Transaction transaction(m_store.database());
  for (const auto& model : found) insert_row(m_store.database(), model);
  transaction.commit();
}

void ModelRegistry::unindex(const std::string& name, const std::string& version) {
  store::Transaction transaction(m_store.database());
  store::Statement remove(m_store.database(),
                          "DELETE FROM models WHERE name = ?1 AND version = ?2");
  remove.bind(1, name);
  remove.bind(2, version);
  remove.step();
  transaction.commit();
}

}  // namespace amlrun::registry
