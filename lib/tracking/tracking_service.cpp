#include "lib/tracking/tracking_service.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <set>

#include "lib/store/metrics.hpp"
#include "lib/store/run_layout.hpp"
#include "lib/store/run_store.hpp"
#include "lib/tracking/artifact_files.hpp"
#include "lib/tracking/errors.hpp"
#include "lib/tracking/mlflow_json.hpp"
#include "lib/tracking/validation.hpp"
#include "lib/util/error.hpp"
#include "lib/util/hash.hpp"
#include "lib/util/names.hpp"
#include "lib/util/random.hpp"
#include "lib/util/safe_dir.hpp"
#include "lib/util/strings.hpp"
#include "lib/util/time.hpp"

namespace amlrun::tracking {

using nlohmann::json;
using store::RunState;

std::string TrackingService::artifact_uri(const std::string& run_id) {
  return fmt::format("mlflow-artifacts:/{}/outputs", run_id);
}

namespace {

constexpr const char* k_parent_tag = "mlflow.parentRunId";
constexpr const char* k_run_name_tag = "mlflow.runName";
// In-memory latest values per run, for runs/get; past this many names the
// rest are still stored, only not echoed.
constexpr std::size_t k_max_latest_metrics = 10000;

struct LatestMetric {
  double value = 0;
  std::int64_t timestamp = 0;
  std::int64_t step = 0;
};

// A run this endpoint writes to: the run it serves, or a child run it made.
struct WritableRun {
  fs::path run_dir;
  std::string outputs_relative;
  bool owned = false;                          // the served run (its owner ingests its metrics)
  bool open_child = false;                     // a nested run not yet ended
  std::map<int, util::UniqueFd> metric_files;  // by rank
  std::map<std::string, LatestMetric> latest;
  std::map<std::string, std::string> client_tags;  // mlflow.* tags, kept here
};

}  // namespace

struct TrackingService::State {
  std::unique_ptr<RunRecords> records;
  TrackingConfig config;
  std::mutex mutex;
  std::map<std::string, WritableRun> runs;
  std::set<std::string> created_experiments;
  LoggedModels models;

  State(std::unique_ptr<RunRecords> r, TrackingConfig c)
      : records(std::move(r)), config(std::move(c)) {
    WritableRun& served = runs[config.run_id];
    served.run_dir = config.run_dir;
    served.outputs_relative = config.outputs_relative;
    served.owned = true;
  }

  // --- experiments -------------------------------------------------------

  std::set<std::string> experiment_names() {
    std::set<std::string> names(created_experiments.begin(), created_experiments.end());
    names.insert(config.experiment);
    names.merge(records->experiment_names());
    return names;
  }

  std::optional<std::string> experiment_name_of(const std::string& id) {
    for (const auto& name : experiment_names()) {
      if (experiment_id_of(name) == id) return name;
    }
    return std::nullopt;
  }

  std::string require_experiment(const std::string& id) {
    auto name = experiment_name_of(id);
    if (!name) does_not_exist(fmt::format("No Experiment with id={} exists", id));
    return *name;
  }

  // --- runs ----------------------------------------------------------------

  store::RunRecord load_run(const std::string& id) {
    std::optional<store::RunRecord> record;
    try {
      record = records->find(id);
    } catch (const util::Error& error) {
      does_not_exist(fmt::format("Run with id={} cannot be read: {}", id, error.what()));
    }
    if (!record) does_not_exist(fmt::format("Run with id={} not found", id));
    return *record;
  }

  WritableRun& writable(const std::string& id) {
    auto found = runs.find(id);
    if (found != runs.end()) return found->second;
    load_run(id);  // 404 for a run that does not exist at all
    permission_denied(fmt::format(
        "run {} is not written through this endpoint: it serves run {} and the nested runs it "
        "made",
        id, config.run_id));
  }

  json run_info(const store::RunRecord& record) {
    json info = {{"run_id", record.id},
                 {"run_uuid", record.id},
                 {"run_name", record.display_name.empty() ? record.id : record.display_name},
                 {"experiment_id", experiment_id_of(record.experiment)},
                 {"user_id", record.submitted_by},
                 {"status", mlflow_status(record.state)},
                 {"start_time", epoch_ms(record.created_at)},
                 {"artifact_uri", TrackingService::artifact_uri(record.id)},
                 {"lifecycle_stage", "active"}};
    if (!record.ended_at.empty()) info["end_time"] = epoch_ms(record.ended_at);
    return info;
  }

  json run_json(const store::RunRecord& record) {
    json metrics = json::array();
    std::map<std::string, LatestMetric> latest;
    for (const auto& [name, metric] : records->last_metrics(record.id)) {
      latest[name] = {metric.value, 0, metric.step};
    }
    json tags = json::array();
    for (const auto& [key, value] : record.tags) tags.push_back({{"key", key}, {"value", value}});
    auto found = runs.find(record.id);
    bool has_parent_tag = false, has_name_tag = false;
    if (found != runs.end()) {
      for (const auto& [name, metric] : found->second.latest) latest[name] = metric;
      for (const auto& [key, value] : found->second.client_tags) {
        tags.push_back({{"key", key}, {"value", value}});
        has_parent_tag |= key == k_parent_tag;
        has_name_tag |= key == k_run_name_tag;
      }
    }
    if (!record.parent_id.empty() && !has_parent_tag) {
      tags.push_back({{"key", k_parent_tag}, {"value", record.parent_id}});
    }
    if (!has_name_tag) {
      tags.push_back({{"key", k_run_name_tag},
                      {"value", record.display_name.empty() ? record.id : record.display_name}});
    }
    for (const auto& [name, metric] : latest) {
      metrics.push_back({{"key", name},
                         {"value", json_double(metric.value)},
                         {"timestamp", metric.timestamp},
                         {"step", metric.step}});
    }
    json params = json::array();
    for (const auto& [key, value] : record.params) {
      params.push_back({{"key", key}, {"value", value}});
    }
    return {{"info", run_info(record)},
            {"data", {{"metrics", metrics}, {"params", params}, {"tags", tags}}},
            {"inputs", json::object()}};
  }

  // --- writes --------------------------------------------------------------

  void check_rank(int rank) const {
    if (rank < 0 || rank >= config.world_size) {
      invalid_parameter(fmt::format("rank {} is not a rank of run {} (it has {})", rank,
                                    config.run_id, config.world_size));
    }
  }

  // Appends the metrics as one write, or nothing (a failed write is cut back).
  void append_metrics(const std::string& run_id, WritableRun& run, int rank,
                      const std::vector<Metric>& metrics) {
    if (metrics.empty()) return;
    std::string lines;
    lines.reserve(metrics.size() * 64);
    for (const auto& metric : metrics) {
      std::string value = std::isfinite(metric.value)
                              ? store::format_metric_value(metric.value)
                              : fmt::format("\"{}\"", store::format_metric_value(metric.value));
      lines += fmt::format("{{\"name\":\"{}\",\"value\":{},\"step\":{}}}\n", metric.key, value,
                           metric.step);
    }
    util::UniqueFd& fd = run.metric_files[rank];
    try {
      if (!fd) {
        fd = util::SafeDir::open(run.run_dir)
                 .make_dirs(store::RunTree::relative_metrics())
                 .open_file(store::RunTree::tracking_metrics_name(rank),
                            O_WRONLY | O_CREAT | O_APPEND);
      }
    } catch (const std::exception& error) {
      cannot_store(fmt::format("cannot open the metrics file of rank {}: {}", rank, error.what()));
    }
    off_t before = ::lseek(fd.get(), 0, SEEK_END);
    std::size_t done = 0;
    while (done < lines.size()) {
      ssize_t wrote = ::write(fd.get(), lines.data() + done, lines.size() - done);
      if (wrote < 0 && errno == EINTR) continue;
      if (wrote <= 0) {
        int error = errno;
        if (before >= 0 && ::ftruncate(fd.get(), before) != 0) fd = util::UniqueFd();
        cannot_store(
            fmt::format("cannot append to the metrics of rank {}: {}", rank, std::strerror(error)));
      }
      done += static_cast<std::size_t>(wrote);
    }
    for (const auto& metric : metrics) {
      auto found = run.latest.find(metric.key);
      if (found == run.latest.end() && run.latest.size() >= k_max_latest_metrics) continue;
      run.latest[metric.key] = {metric.value, metric.timestamp, metric.step};
    }
    if (!run.owned) records->child_metrics_appended(run_id);
  }

  void add_params(const std::string& run_id,
                  const std::vector<std::pair<std::string, std::string>>& params) {
    if (params.empty()) return;
    try {
      records->add_params(run_id, params);
    } catch (const util::InputError& error) {
      invalid_parameter(error.what());
    } catch (const std::exception& error) {
      cannot_store(fmt::format("cannot record the params of run {}: {}", run_id, error.what()));
    }
  }

  void set_tags(WritableRun& run, const std::string& run_id,
                const std::vector<std::pair<std::string, std::string>>& tags) {
    std::vector<std::pair<std::string, std::string>> stored;
    for (const auto& [key, value] : tags) {
      if (key.starts_with("mlflow.")) {
        run.client_tags[key] = value;
      } else {
        stored.emplace_back(key, value);
      }
    }
    if (stored.empty()) return;
    try {
      records->update_tags(run_id, stored, {});
    } catch (const util::InputError& error) {
      invalid_parameter(error.what());
    } catch (const std::exception& error) {
      cannot_store(fmt::format("cannot record the tags of run {}: {}", run_id, error.what()));
    }
  }

  void end_child(WritableRun& run, store::RunRecord& record, RunState state,
                 const std::string& reason) {
    run.metric_files.clear();  // closed before the final ingest reads them
    run.open_child = false;
    records->end_child(record, state, reason);
  }

  // --- artifacts -----------------------------------------------------------

  struct ArtifactPlace {
    WritableRun* run = nullptr;  // null: a run this endpoint does not write (read only)
    fs::path run_dir;
    std::string outputs_relative;
    std::string relative;  // below outputs, "" for outputs itself
  };

  ArtifactPlace artifact_place(const std::string& path, bool allow_root) {
    std::string_view rest = path;
    while (rest.starts_with('/')) rest.remove_prefix(1);
    std::size_t slash = rest.find('/');
    std::string run_id(rest.substr(0, slash));
    std::string_view after = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
    if (!after.starts_with("outputs") || (after.size() > 7 && after[7] != '/')) {
      invalid_parameter(
          fmt::format("Invalid artifact path {}: artifacts are below <run id>/outputs/ (the run's "
                      "artifact_uri)",
                      util::printable(path, 80)));
    }
    after.remove_prefix(std::min<std::size_t>(after.size(), 8));
    ArtifactPlace place;
    place.relative = check_artifact_path(after, allow_root);
    auto found = runs.find(run_id);
    if (found != runs.end()) {
      place.run = &found->second;
      place.run_dir = found->second.run_dir;
      place.outputs_relative = found->second.outputs_relative;
      return place;
    }
    store::RunRecord record = load_run(run_id);
    auto dir = records->run_dir(record.id);
    if (!dir) does_not_exist(fmt::format("Run with id={} has no artifacts here", run_id));
    place.run_dir = *dir;
    place.outputs_relative =
        store::is_terminal(record.state)
            ? store::RunTree::relative_outputs()
            : fmt::format("{}/{}", store::k_working_dir, store::k_job_outputs_dir);
    return place;
  }
};

TrackingService::TrackingService(const workspace::Workspace& workspace, TrackingConfig config)
    : TrackingService(store_run_records(workspace), std::move(config)) {}

TrackingService::TrackingService(std::unique_ptr<RunRecords> records, TrackingConfig config)
    : m_state(std::make_unique<State>(std::move(records), std::move(config))) {}

TrackingService::~TrackingService() {
  try {
    end_open_runs();
  } catch (const std::exception&) {
  }
}

json TrackingService::get_experiment(const std::string& experiment_id) {
  std::lock_guard lock(m_state->mutex);
  return {{"experiment", experiment_json(m_state->require_experiment(experiment_id))}};
}

json TrackingService::get_experiment_by_name(const std::string& name) {
  std::lock_guard lock(m_state->mutex);
  if (!m_state->experiment_names().contains(name)) {
    does_not_exist(fmt::format("Could not find experiment with name '{}'", name));
  }
  return {{"experiment", experiment_json(name)}};
}

json TrackingService::create_experiment(const json& body) {
  std::string name = required_string(body, "name");
  std::lock_guard lock(m_state->mutex);
  if (!util::is_valid_name(name)) {
    invalid_parameter(
        fmt::format("Invalid experiment name {}: amlrun experiment names are 1-128 characters from "
                    "[A-Za-z0-9._-], starting with a letter or digit",
                    util::printable(name, 60)));
  }
  if (m_state->experiment_names().contains(name)) {
    already_exists(fmt::format("Experiment '{}' already exists.", name));
  }
  m_state->created_experiments.insert(name);
  return {{"experiment_id", experiment_id_of(name)}};
}

json TrackingService::search_experiments(const json& body) {
  std::lock_guard lock(m_state->mutex);
  std::string filter = body.value("filter", "");
  if (!filter.empty()) {
    invalid_parameter("amlrun's endpoint does not filter experiments; leave 'filter' out");
  }
  json experiments = json::array();
  for (const auto& name : m_state->experiment_names()) {
    experiments.push_back(experiment_json(name));
  }
  return {{"experiments", experiments}};
}

json TrackingService::create_run(const json& body) {
  std::string experiment_id =
      body.value("experiment_id", experiment_id_of(m_state->config.experiment));
  auto tags = parse_pairs(body, "tags", /*params=*/false);
  std::string run_name = body.contains("run_name") && body["run_name"].is_string()
                             ? body["run_name"].get<std::string>()
                             : "";
  std::lock_guard lock(m_state->mutex);
  State& state = *m_state;
  std::string experiment = state.require_experiment(experiment_id);
  std::string parent = state.config.run_id;
  std::vector<std::pair<std::string, std::string>> user_tags, client_tags;
  for (const auto& [key, value] : tags) {
    if (key == k_parent_tag) parent = value;
    if (key == k_run_name_tag && run_name.empty()) run_name = value;
    (key.starts_with("mlflow.") ? client_tags : user_tags).emplace_back(key, value);
  }
  state.writable(parent);
  store::RunRecord parent_record = state.load_run(parent);
  store::RunRecord record;
  record.id = store::RunStore::new_run_id(experiment);
  record.experiment = experiment;
  record.display_name = run_name;
  record.parent_id = parent;
  record.tags = user_tags;
  std::sort(record.tags.begin(), record.tags.end());
  record.compute = parent_record.compute;
  record.compute_type = parent_record.compute_type;
  record.submitted_by = parent_record.submitted_by;
  record.submit_host = parent_record.submit_host;
  record.amlrun_version = parent_record.amlrun_version;
  record.target =
      nlohmann::json::object();  // no processes of its own: the parent's owner serves it
  record.distribution = "none";
  WritableRun child;
  try {
    child.run_dir = state.records->create_child(record);
  } catch (const util::InputError& error) {
    invalid_parameter(error.what());
  } catch (const std::exception& error) {
    cannot_store(fmt::format("cannot create the nested run: {}", error.what()));
  }
  child.open_child = true;
  child.outputs_relative = store::RunTree::relative_outputs();
  for (const auto& [key, value] : client_tags) child.client_tags[key] = value;
  auto& stored = state.runs[record.id] = std::move(child);
  (void)stored;
  return {{"run", state.run_json(record)}};
}

json TrackingService::get_run(const std::string& run_id) {
  std::lock_guard lock(m_state->mutex);
  return {{"run", m_state->run_json(m_state->load_run(run_id))}};
}

json TrackingService::update_run(const json& body) {
  std::string run_id = run_id_field(body);
  std::string status = body.value("status", "");
  std::lock_guard lock(m_state->mutex);
  State& state = *m_state;
  WritableRun& run = state.writable(run_id);
  store::RunRecord record = state.load_run(run_id);
  static const std::set<std::string> statuses = {"",         "RUNNING", "SCHEDULED",
                                                 "FINISHED", "FAILED",  "KILLED"};
  if (!statuses.contains(status)) {
    invalid_parameter(fmt::format("Invalid value {} for parameter 'status' supplied",
                                  util::printable(status, 40)));
  }
  // The served run's state is its owner's: the client ending it (end_run at
  // exit) changes nothing; amlrun ends it when its processes end.
  if (!run.owned && !store::is_terminal(record.state)) {
    try {
      if (status == "FINISHED") {
        state.end_child(run, record, RunState::completed, "");
      } else if (status == "FAILED") {
        state.end_child(run, record, RunState::failed, "ended by the MLflow client as FAILED");
      } else if (status == "KILLED") {
        state.end_child(run, record, RunState::canceled, "ended by the MLflow client as KILLED");
      }
    } catch (const std::exception& error) {
      cannot_store(fmt::format("cannot record the end of run {}: {}", run_id, error.what()));
    }
  }
  return {{"run_info", state.run_info(record)}};
}

json TrackingService::search_runs(const json& body) {
  std::string filter = body.value("filter", "");
  if (!filter.empty()) {
    invalid_parameter(
        "amlrun's endpoint does not filter runs; leave 'filter' out (amlrun runs list "
        "--tag/--parent filters)");
  }
  std::int64_t max_results = int64_field(body, "max_results", 1000);
  if (max_results < 1 || max_results > 50000) {
    invalid_parameter("Invalid value for parameter 'max_results': use 1 to 50000");
  }
  std::lock_guard lock(m_state->mutex);
  State& state = *m_state;
  json runs = json::array();
  auto ids = body.value("experiment_ids", std::vector<std::string>{});
  for (const auto& id : ids) {
    auto name = state.experiment_name_of(id);
    if (!name) continue;
    for (const auto& run_id : state.records->runs_of(*name, static_cast<int>(max_results))) {
      if (static_cast<std::int64_t>(runs.size()) >= max_results) break;
      try {
        auto record = state.records->find(run_id);
        if (record) runs.push_back(state.run_json(*record));
      } catch (const std::exception&) {
        // A damaged record is left out; `amlrun doctor` reports it.
      }
    }
  }
  return {{"runs", runs}};
}

json TrackingService::log_metric(const json& body, int rank) {
  std::string run_id = run_id_field(body);
  auto metric = parse_metric(body, "");
  bool owned = false;
  {
    std::lock_guard lock(m_state->mutex);
    m_state->check_rank(rank);
    WritableRun& run = m_state->writable(run_id);
    m_state->append_metrics(run_id, run, rank, {metric});
    owned = run.owned;
  }
  if (owned && m_state->config.on_metrics) m_state->config.on_metrics();
  return json::object();
}

json TrackingService::log_param(const json& body) {
  std::string run_id = run_id_field(body);
  std::string key = required_string(body, "key");
  std::string value = body.contains("value") && body["value"].is_string()
                          ? body["value"].get<std::string>()
                          : required_string(body, "value");
  check_param("key", key, value);
  std::lock_guard lock(m_state->mutex);
  m_state->writable(run_id);
  m_state->add_params(run_id, {{key, value}});
  return json::object();
}

json TrackingService::set_tag(const json& body) {
  std::string run_id = run_id_field(body);
  std::string key = required_string(body, "key");
  std::string value = required_string(body, "value");
  check_tag("key", key, value);
  std::lock_guard lock(m_state->mutex);
  WritableRun& run = m_state->writable(run_id);
  m_state->set_tags(run, run_id, {{key, value}});
  return json::object();
}

json TrackingService::delete_tag(const json& body) {
  std::string run_id = run_id_field(body);
  std::string key = required_string(body, "key");
  std::lock_guard lock(m_state->mutex);
  State& state = *m_state;
  WritableRun& run = state.writable(run_id);
  if (key.starts_with("mlflow.")) {
    if (run.client_tags.erase(key) == 0) {
      does_not_exist(fmt::format("No tag with name: {} in run with id {}", key, run_id));
    }
    return json::object();
  }
  store::RunRecord record = state.load_run(run_id);
  bool present = std::any_of(record.tags.begin(), record.tags.end(),
                             [&](const auto& tag) { return tag.first == key; });
  if (!present) does_not_exist(fmt::format("No tag with name: {} in run with id {}", key, run_id));
  try {
    state.records->update_tags(run_id, {}, {key});
  } catch (const util::InputError& error) {
    invalid_parameter(error.what());
  } catch (const std::exception& error) {
    cannot_store(fmt::format("cannot remove the tag of run {}: {}", run_id, error.what()));
  }
  return json::object();
}

json TrackingService::log_batch(const json& body, int rank) {
  std::string run_id = run_id_field(body);
  // Everything is checked before anything is stored: a batch is taken whole
  // or not at all (the params, which may clash, are stored first).
  std::vector<Metric> metrics;
  if (body.contains("metrics") && !body["metrics"].is_null()) {
    if (!body["metrics"].is_array()) {
      invalid_parameter("Invalid value for parameter 'metrics' supplied: expected a list");
    }
    const json& list = body["metrics"];
    if (list.size() > k_max_metrics_per_batch) {
      invalid_parameter(fmt::format(
          "A batch logging request can contain at most {} metrics. Got {} metrics. Please split "
          "up metrics across multiple requests and try again.",
          k_max_metrics_per_batch, list.size()));
    }
    metrics.reserve(list.size());
    for (std::size_t i = 0; i < list.size(); ++i) {
      if (!list[i].is_object()) {
        invalid_parameter(fmt::format("Invalid value for parameter 'metrics[{}]' supplied", i));
      }
      metrics.push_back(parse_metric(list[i], fmt::format("metrics[{}]", i)));
    }
  }
  auto params = parse_pairs(body, "params", /*params=*/true);
  auto tags = parse_pairs(body, "tags", /*params=*/false);
  if (params.size() > k_max_params_tags_per_batch || tags.size() > k_max_params_tags_per_batch) {
    invalid_parameter(fmt::format(
        "A batch logging request can contain at most {} params and {} tags. Got {} params and {} "
        "tags.",
        k_max_params_tags_per_batch, k_max_params_tags_per_batch, params.size(), tags.size()));
  }
  if (metrics.size() + params.size() + tags.size() > k_max_entities_per_batch) {
    invalid_parameter(fmt::format(
        "A batch logging request can contain at most {} metrics, params and tags in total.",
        k_max_entities_per_batch));
  }
  std::set<std::string> keys;
  for (const auto& [key, value] : params) {
    if (!keys.insert(key).second) {
      invalid_parameter(fmt::format(
          "Duplicate parameter keys have been submitted: ['{}']. Please ensure the request "
          "contains only one param value per param key.",
          key));
    }
  }
  bool owned = false;
  {
    std::lock_guard lock(m_state->mutex);
    State& state = *m_state;
    state.check_rank(rank);
    WritableRun& run = state.writable(run_id);
    state.add_params(run_id, params);
    state.set_tags(run, run_id, tags);
    state.append_metrics(run_id, run, rank, metrics);
    owned = run.owned && !metrics.empty();
  }
  if (owned && m_state->config.on_metrics) m_state->config.on_metrics();
  return json::object();
}

json TrackingService::create_logged_model(const json& body) {
  std::lock_guard lock(m_state->mutex);
  State& state = *m_state;
  std::string experiment_id =
      body.value("experiment_id", experiment_id_of(state.config.experiment));
  state.require_experiment(experiment_id);
  std::string run_id = body.value("source_run_id", "");
  if (run_id.empty()) run_id = state.config.run_id;
  state.writable(run_id);
  const LoggedModel& model = state.models.create(body, experiment_id, run_id);
  try {
    state.records->add_model(run_id, model.id, model.name);
  } catch (const std::exception& error) {
    cannot_store(fmt::format("cannot record the model of run {}: {}", run_id, error.what()));
  }
  return {{"model", logged_model_json(model)}};
}

json TrackingService::log_outputs(const json& body) {
  std::string run_id = run_id_field(body);
  std::lock_guard lock(m_state->mutex);
  m_state->writable(run_id);
  for (const auto& output : body.value("models", json::array())) {
    if (!output.is_object()) invalid_parameter("Invalid value for parameter 'models' supplied");
    m_state->models.get(output.value("model_id", ""));
  }
  return json::object();
}

json TrackingService::with_models(const std::function<json(LoggedModels&)>& call) {
  std::lock_guard lock(m_state->mutex);
  return call(m_state->models);
}

void TrackingService::upload_artifact(const std::string& path, const BodyReader& read_body) {
  std::unique_lock lock(m_state->mutex);
  auto place = m_state->artifact_place(path, /*allow_root=*/false);
  if (!place.run) {
    permission_denied(fmt::format(
        "run {} is not written through this endpoint: it serves run {} and the nested runs it "
        "made",
        path.substr(0, path.find('/')), m_state->config.run_id));
  }
  lock.unlock();  // an upload can take a while; other requests go on
  write_artifact({place.run_dir, place.outputs_relative, place.relative}, read_body);
}

util::UniqueFd TrackingService::open_artifact(const std::string& path) {
  std::unique_lock lock(m_state->mutex);
  auto place = m_state->artifact_place(path, /*allow_root=*/false);
  lock.unlock();
  return open_artifact_file({place.run_dir, place.outputs_relative, place.relative});
}

json TrackingService::list_artifacts(const std::string& path) {
  std::unique_lock lock(m_state->mutex);
  auto place = m_state->artifact_place(path, /*allow_root=*/true);
  lock.unlock();
  return list_artifact_folder({place.run_dir, place.outputs_relative, place.relative});
}

void TrackingService::end_open_runs() {
  std::lock_guard lock(m_state->mutex);
  State& state = *m_state;
  for (auto& [id, run] : state.runs) {
    if (!run.open_child) continue;
    try {
      auto found = state.records->find(id);
      if (!found) continue;
      store::RunRecord& record = *found;
      state.end_child(run, record, RunState::failed,
                      "the nested run was still open when its parent run ended");
    } catch (const std::exception&) {
    }
  }
}

}  // namespace amlrun::tracking
