#include "lib/tracking/tracking_journal.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <map>

#include "lib/store/metric_ingest.hpp"
#include "lib/store/run_layout.hpp"
#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/names.hpp"
#include "lib/util/safe_dir.hpp"
#include "lib/util/strings.hpp"
#include "lib/util/tags.hpp"
#include "lib/util/time.hpp"

namespace amlrun::tracking {

using nlohmann::json;
using store::RunState;

namespace {

constexpr const char* k_journal_file = "tracking_journal.jsonl";
constexpr const char* k_nested_runs_dir = "nested_runs";
constexpr const char* k_open_at_end = "the nested run was still open when its parent run ended";

json pairs_json(const KeyValues& pairs) {
  json list = json::array();
  for (const auto& [key, value] : pairs) list.push_back({key, value});
  return list;
}

KeyValues pairs_of(const json& list) {
  KeyValues pairs;
  for (const auto& pair : list) pairs.emplace_back(pair.at(0).get<std::string>(), pair.at(1));
  return pairs;
}

// MLflow's once-only rule, as the run store words it: returns the params
// not yet logged; throws util::InputError for one logged with another value.
KeyValues new_params(const store::RunRecord& record, const KeyValues& params) {
  KeyValues added;
  for (const auto& [key, value] : params) {
    const std::string& wanted = key;  // clang before 16 cannot capture a binding
    auto found = std::find_if(record.params.begin(), record.params.end(),
                              [&](const auto& param) { return param.first == wanted; });
    bool repeated = std::any_of(added.begin(), added.end(),
                                [&](const auto& param) { return param.first == wanted; });
    if (found == record.params.end() && !repeated) {
      added.emplace_back(key, value);
    } else if (found != record.params.end() && found->second != value) {
      throw util::InputError(fmt::format(
          "parameter '{}' of run {} is already '{}'; a parameter is logged once and cannot be "
          "changed to '{}' (log it under another name)",
          key, record.id, found->second, value));
    }
  }
  return added;
}

void apply_tags(store::RunRecord& record, const KeyValues& set,
                const std::vector<std::string>& remove) {
  for (const auto& key : remove) {
    std::erase_if(record.tags, [&](const auto& tag) { return tag.first == key; });
  }
  for (const auto& [key, value] : set) {
    const std::string& wanted = key;
    auto found = std::find_if(record.tags.begin(), record.tags.end(),
                              [&](const auto& tag) { return tag.first == wanted; });
    if (found != record.tags.end()) {
      found->second = value;
    } else {
      record.tags.emplace_back(key, value);
    }
  }
  std::sort(record.tags.begin(), record.tags.end());
}

class JournalRunRecords final : public RunRecords {
 public:
  JournalRunRecords(fs::path run_dir, store::RunRecord served)
      : m_run_dir(std::move(run_dir)), m_served_id(served.id) {
    m_runs[served.id] = std::move(served);
  }

  std::set<std::string> experiment_names() override {
    std::set<std::string> names;
    for (const auto& [id, record] : m_runs) names.insert(record.experiment);
    return names;
  }

  std::optional<store::RunRecord> find(const std::string& id) override {
    auto found = m_runs.find(id);
    if (found == m_runs.end()) return std::nullopt;
    return found->second;
  }

  std::vector<std::string> runs_of(const std::string& experiment, int limit) override {
    std::vector<std::string> ids;
    for (const auto& [id, record] : m_runs) {
      if (record.experiment == experiment && static_cast<int>(ids.size()) < limit) {
        ids.push_back(id);
      }
    }
    return ids;
  }

  std::map<std::string, LastMetric> last_metrics(const std::string&) override { return {}; }

  void add_params(const std::string& id, const KeyValues& params) override {
    store::RunRecord& record = known(id);
    KeyValues added = new_params(record, params);
    if (added.empty()) return;
    append({{"op", "params"}, {"run", id}, {"values", pairs_json(added)}});
    for (auto& param : added) record.params.push_back(std::move(param));
    std::sort(record.params.begin(), record.params.end());
  }

  void update_tags(const std::string& id, const KeyValues& set,
                   const std::vector<std::string>& remove) override {
    for (const auto& tag : set) util::check_tag(tag);
    for (const auto& key : remove) util::check_tag_key(key);
    store::RunRecord& record = known(id);
    append({{"op", "tags"}, {"run", id}, {"set", pairs_json(set)}, {"remove", remove}});
    apply_tags(record, set, remove);
  }

  void add_model(const std::string& id, const std::string& model_id,
                 const std::string& name) override {
    store::RunRecord& record = known(id);
    append({{"op", "model"}, {"run", id}, {"model", model_id}, {"name", name}});
    record.models.emplace_back(model_id, name);
  }

  fs::path create_child(store::RunRecord& record) override {
    for (const auto& tag : record.tags) util::check_tag(tag);
    std::string now = util::utc_iso8601(util::Clock::now());
    auto dir = util::SafeDir::open(m_run_dir).make_dirs(
        fmt::format("{}/{}", nested_runs_relative(), record.id));
    append({{"op", "create"},
            {"run", record.id},
            {"experiment", record.experiment},
            {"name", record.display_name},
            {"tags", pairs_json(record.tags)},
            {"at", now}});
    record.state = RunState::running;
    record.created_at = record.started_at = now;
    record.history = {{RunState::running, now}};
    m_runs[record.id] = record;
    return dir.path();
  }

  void child_metrics_appended(const std::string&) override {
    // The submitting side ingests them once the run is collected.
  }

  void end_child(store::RunRecord& record, RunState state, const std::string& reason) override {
    if (store::is_terminal(record.state)) return;
    std::string now = util::utc_iso8601(util::Clock::now());
    append({{"op", "end"},
            {"run", record.id},
            {"state", store::to_string(state)},
            {"reason", reason},
            {"at", now}});
    record.state = state;
    record.ended_at = now;
    record.failure_reason = reason;
    record.history.push_back({state, now});
    m_runs[record.id] = record;
  }

  std::optional<fs::path> run_dir(const std::string& id) override {
    if (id == m_served_id) return m_run_dir;
    if (m_runs.contains(id)) return m_run_dir / nested_runs_relative() / id;
    return std::nullopt;
  }

 private:
  store::RunRecord& known(const std::string& id) {
    auto found = m_runs.find(id);
    if (found == m_runs.end()) {
      throw util::InfraError(fmt::format("run {} is not served by this endpoint", id));
    }
    return found->second;
  }

  // One write per entry and fsync before the request is answered: what the
  // client was told is stored survives the node. A failed write is cut back,
  // so the journal never holds half an entry of a request that was refused.
  void append(const json& entry) {
    if (!m_file) {
      m_file = util::SafeDir::open(m_run_dir)
                   .make_dirs(store::RunTree::relative_system_logs())
                   .open_file(k_journal_file, O_WRONLY | O_CREAT | O_APPEND);
    }
    std::string text;
    struct stat file {};
    if (::fstat(m_file.get(), &file) == 0 && file.st_size == 0) {
      text = json({{"amlrun_tracking_journal", k_tracking_journal_version}, {"run", m_served_id}})
                 .dump() +
             "\n";
    }
    text += entry.dump() + "\n";
    off_t before = ::lseek(m_file.get(), 0, SEEK_END);
    try {
      util::write_all(m_file.get(), text, "cannot append to the tracking journal");
      if (::fdatasync(m_file.get()) != 0) util::throw_errno("cannot sync the tracking journal");
    } catch (...) {
      if (before < 0 || ::ftruncate(m_file.get(), before) != 0) m_file = util::UniqueFd();
      throw;
    }
  }

  fs::path m_run_dir;
  std::string m_served_id;
  std::map<std::string, store::RunRecord> m_runs;
  util::UniqueFd m_file;
};

// Checks that an entry has the fields its op needs, of the right types.
void check_entry(const json& entry) {
  std::string op = entry.at("op").get<std::string>();
  std::string run = entry.at("run").get<std::string>();
  if (!util::is_valid_name(run)) throw std::invalid_argument("invalid run id");
  if (op == "params") {
    pairs_of(entry.at("values"));
  } else if (op == "tags") {
    pairs_of(entry.at("set"));
    entry.at("remove").get<std::vector<std::string>>();
  } else if (op == "model") {
    if (!util::is_valid_name(entry.at("model").get<std::string>())) {
      throw std::invalid_argument("invalid model id");
    }
    entry.at("name").get<std::string>();
  } else if (op == "create") {
    entry.at("experiment").get<std::string>();
    entry.at("name").get<std::string>();
    pairs_of(entry.at("tags"));
    entry.at("at").get<std::string>();
  } else if (op == "end") {
    if (!store::run_state_from_string(entry.at("state").get<std::string>())) {
      throw std::invalid_argument("unknown state");
    }
    entry.at("reason").get<std::string>();
    entry.at("at").get<std::string>();
  } else {
    throw std::invalid_argument(fmt::format("unknown op '{}'", op));
  }
}

std::optional<util::TimePoint> time_of(const json& entry) {
  try {
    return util::parse_utc_iso8601(entry.at("at").get<std::string>());
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace

std::string tracking_journal_relative() {
  return fmt::format("{}/{}", store::RunTree::relative_system_logs(), k_journal_file);
}

std::string nested_runs_relative() {
  return fmt::format("{}/{}", store::RunTree::relative_logs(), k_nested_runs_dir);
}

std::unique_ptr<RunRecords> journal_run_records(const fs::path& run_dir, store::RunRecord served) {
  return std::make_unique<JournalRunRecords>(run_dir, std::move(served));
}

JournalContents read_tracking_journal(std::string_view text, const std::string& name) {
  JournalContents contents;
  auto lines = util::split(text, '\n');
  bool complete = text.ends_with('\n');
  if (complete && !lines.empty() && lines.back().empty()) lines.pop_back();
  for (std::size_t i = 0; i < lines.size(); ++i) {
    std::size_t number = i + 1;
    bool last = i + 1 == lines.size();
    if (last && !complete) {
      // The node stopped in the middle of an append: that request was never
      // answered as stored.
      contents.problems.push_back(
          fmt::format("{}:{}: the last entry is incomplete (the run ended while it was being "
                      "written); it is skipped",
                      name, number));
      break;
    }
    json entry;
    try {
      entry = json::parse(lines[i]);
    } catch (const json::exception&) {
      contents.problems.push_back(fmt::format(
          "{}:{}: not a JSON object; this entry is skipped, the rest is merged", name, number));
      continue;
    }
    if (i == 0) {
      if (!entry.is_object() ||
          entry.value("amlrun_tracking_journal", 0) != k_tracking_journal_version ||
          !entry.contains("run") || !entry["run"].is_string()) {
        contents.problems.push_back(fmt::format(
            "{}:1: not an amlrun tracking journal of version {} (its first line is "
            "{}); nothing in it was merged",
            name, k_tracking_journal_version, util::printable(std::string(lines[0]), 80)));
        return contents;
      }
      contents.run_id = entry["run"].get<std::string>();
      continue;
    }
    try {
      check_entry(entry);
    } catch (const std::exception&) {
      contents.problems.push_back(
          fmt::format("{}:{}: not a tracking journal entry: {}; it is skipped, the rest is merged",
                      name, number, util::printable(std::string(lines[i]), 80)));
      continue;
    }
    contents.entries.push_back(std::move(entry));
  }
  return contents;
}

namespace {

struct NestedRun {
  store::RunRecord record;
  std::optional<util::TimePoint> created_at;
  std::optional<util::TimePoint> ended_at;
  bool ended = false;
};

// Moves a nested run's collected files into its own run directory.
void move_nested_files(const fs::path& parent_dir, store::RunStore& store, const std::string& id) {
  auto nested = util::SafeDir::open(parent_dir).find_dir(nested_runs_relative() + "/" + id);
  auto child = util::SafeDir::open(store.run_dir(id));
  if (nested && S_ISDIR(nested->type_of(store::k_artifacts_dir)) &&
      child.type_of(store::k_artifacts_dir) == 0) {
    if (::renameat(nested->fd(), store::k_artifacts_dir, child.fd(), store::k_artifacts_dir) != 0) {
      util::throw_errno(fmt::format("cannot move the files of nested run {}", id));
    }
  }
  child.make_dirs(store::RunTree::relative_outputs());
  child.make_dirs(store::RunTree::relative_logs());
}

}  // namespace

std::vector<std::string> merge_tracking_journal(store::RunStore& store, const store::RunRecord& run,
                                                const fs::path& run_dir) {
  std::vector<std::string> problems;
  std::string name = fmt::format("logs/system/{}", k_journal_file);
  std::string text;
  try {
    auto journal = util::SafeDir::open(run_dir).find_dir(store::RunTree::relative_system_logs());
    if (!journal || !S_ISREG(journal->type_of(k_journal_file))) return problems;
    util::UniqueFd fd = journal->open_file(k_journal_file, O_RDONLY);
    text = util::read_fd(fd.get(), journal->path() / k_journal_file);
  } catch (const std::exception& error) {
    return {fmt::format("tracking: cannot read {}: {}", name, error.what())};
  }
  JournalContents contents = read_tracking_journal(text, name);
  for (auto& problem : contents.problems) problems.push_back("tracking: " + problem);
  if (!contents.run_id.empty() && contents.run_id != run.id) {
    problems.push_back(
        fmt::format("tracking: {} is the journal of run {}, not of {}; nothing in "
                    "it was merged",
                    name, contents.run_id, run.id));
    return problems;
  }
  std::map<std::string, NestedRun> nested;
  auto report = [&](const std::string& what, const std::exception& error) {
    problems.push_back(fmt::format("tracking: {} was not merged: {}", what, error.what()));
  };
  for (const auto& entry : contents.entries) {
    std::string op = entry["op"], id = entry["run"];
    auto child = nested.find(id);
    if (op == "create") {
      NestedRun made;
      made.record.id = id;
      made.record.experiment = entry["experiment"];
      made.record.display_name = entry["name"];
      made.record.tags = pairs_of(entry["tags"]);
      std::sort(made.record.tags.begin(), made.record.tags.end());
      made.created_at = time_of(entry);
      nested[id] = std::move(made);
    } else if (id == run.id && op == "params") {
      try {
        store.add_params(id, pairs_of(entry["values"]));
      } catch (const util::Error& error) {
        report(fmt::format("a param of run {}", id), error);
      }
    } else if (id == run.id && op == "tags") {
      try {
        store.update_tags(id, pairs_of(entry["set"]), entry["remove"]);
      } catch (const util::Error& error) {
        report(fmt::format("a tag of run {}", id), error);
      }
    } else if (id == run.id && op == "model") {
      try {
        store.add_model(id, entry["model"], entry["name"]);
      } catch (const util::Error& error) {
        report(fmt::format("a model of run {}", id), error);
      }
    } else if (child == nested.end()) {
      problems.push_back(
          fmt::format("tracking: {} names run {}, which is neither this run nor a "
                      "nested run it made; it was not merged",
                      name, id));
    } else if (op == "params") {
      try {
        for (auto& param : new_params(child->second.record, pairs_of(entry["values"]))) {
          child->second.record.params.push_back(std::move(param));
        }
      } catch (const util::Error& error) {
        report(fmt::format("a param of nested run {}", id), error);
      }
    } else if (op == "tags") {
      apply_tags(child->second.record, pairs_of(entry["set"]), entry["remove"]);
    } else if (op == "model") {
      child->second.record.models.emplace_back(entry["model"], entry["name"]);
    } else if (op == "end" && !child->second.ended) {
      child->second.ended = true;
      child->second.record.state = *store::run_state_from_string(entry["state"]);
      child->second.record.failure_reason = entry["reason"];
      child->second.ended_at = time_of(entry);
    }
  }
  for (auto& [id, child] : nested) {
    try {
      if (fs::exists(store.run_dir(id))) continue;  // merged before an interruption
      store::RunRecord record = child.record;
      RunState end = child.ended ? record.state : RunState::failed;
      if (!child.ended) record.failure_reason = k_open_at_end;
      std::sort(record.params.begin(), record.params.end());
      record.parent_id = run.id;
      record.compute = run.compute;
      record.compute_type = run.compute_type;
      record.submitted_by = run.submitted_by;
      record.submit_host = run.submit_host;
      record.amlrun_version = run.amlrun_version;
      record.target = json::object();
      record.distribution = "none";
      std::string reason = record.failure_reason;
      record.failure_reason.clear();
      auto lock = store.create(record);
      move_nested_files(run_dir, store, id);
      store.transition(record, RunState::running, child.created_at);
      store::MetricIngestor(store, id, store::RunTree(store.run_dir(id)).metrics())
          .ingest(/*final=*/true, store::MetricIngestor::k_unlimited);
      if (end == RunState::completed) store.transition(record, RunState::finalizing);
      record.failure_reason = reason;
      store.transition(record, end, child.ended_at);
    } catch (const std::exception& error) {
      report(fmt::format("nested run {}", id), error);
    }
  }
  std::error_code ignored;
  fs::remove_all(run_dir / nested_runs_relative(), ignored);
  return problems;
}

}  // namespace amlrun::tracking
