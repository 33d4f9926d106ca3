#include "lib/store/run_record.hpp"

#include <fmt/format.h>

#include "lib/util/error.hpp"
#include "lib/util/tags.hpp"
#include "lib/util/time.hpp"

namespace amlrun::store {

namespace {
const std::pair<RunState, const char*> k_names[] = {
    {RunState::queued, "Queued"},         {RunState::preparing, "Preparing"},
    {RunState::starting, "Starting"},     {RunState::running, "Running"},
    {RunState::finalizing, "Finalizing"}, {RunState::completed, "Completed"},
    {RunState::failed, "Failed"},         {RunState::canceled, "Canceled"},
};
}  // namespace

std::string to_string(RunState state) {
  for (const auto& [s, name] : k_names) {
    if (s == state) return name;
  }
  return "Unknown";
}

std::optional<RunState> run_state_from_string(const std::string& text) {
  for (const auto& [s, name] : k_names) {
    if (text == name) return s;
  }
  return std::nullopt;
}

bool is_terminal(RunState state) {
  return state == RunState::completed || state == RunState::failed || state == RunState::canceled;
}

bool can_transition(RunState from, RunState to) {
  if (is_terminal(from)) return false;
  if (to == RunState::failed || to == RunState::canceled) return true;
  // A cluster may requeue a running job: it waits to start again.
  if (from == RunState::running && to == RunState::starting) return true;
  return static_cast<int>(to) > static_cast<int>(from) &&
         (to != RunState::completed || from == RunState::finalizing);
}

double RunRecord::duration_seconds() const {
  auto start = util::parse_utc_iso8601(created_at);
  auto end = ended_at.empty() ? util::Clock::now() : util::parse_utc_iso8601(ended_at);
  return std::chrono::duration<double>(end - start).count();
}

nlohmann::ordered_json to_json(const RunRecord& r) {
  nlohmann::ordered_json j;
  j["format_version"] = r.format_version;
  j["id"] = r.id;
  if (r.kind == RunKind::sweep) j["kind"] = "sweep";
  j["experiment"] = r.experiment;
  j["display_name"] = r.display_name;
  j["description"] = r.description;
  j["tags"] = util::tags_to_json(r.tags);
  j["tags_revision"] = r.tags_revision;
  if (!r.params.empty()) j["params"] = util::tags_to_json(r.params);
  if (!r.models.empty()) j["models"] = util::tags_to_json(r.models);
  if (!r.parent_id.empty()) j["parent_id"] = r.parent_id;
  j["state"] = to_string(r.state);
  nlohmann::ordered_json history = nlohmann::ordered_json::array();
  for (const auto& change : r.history) {
    history.push_back({{"state", to_string(change.state)}, {"at", change.at}});
  }
  j["history"] = history;
  j["created_at"] = r.created_at;
  j["started_at"] = r.started_at;
  j["ended_at"] = r.ended_at;
  j["exit_code"] =
      r.exit_code ? nlohmann::ordered_json(*r.exit_code) : nlohmann::ordered_json(nullptr);
  j["failure_reason"] = r.failure_reason;
  if (!r.warnings.empty()) j["warnings"] = r.warnings;
  j["compute"] = r.compute;
  j["compute_type"] = r.compute_type;
  j["snapshot"] = {{"id", r.snapshot_id}, {"files", r.snapshot_files}, {"bytes", r.snapshot_bytes}};
  j["environment"] = {{"hash", r.environment_hash}, {"mode", r.environment_mode}};
  j["instance_count"] = r.instance_count;
  j["process_count"] = r.process_count;
  j["distribution"] = r.distribution;
  j["spec_file"] = r.spec_file;
  j["submitted_by"] = r.submitted_by;
  j["submit_host"] = r.submit_host;
  j["amlrun_version"] = r.amlrun_version;
  j["target"] = r.target;
  // Two facts every target shares are kept under "target", where the first
  // amlrun wrote them (scripts read them there).
  if (r.infrastructure_failure) j["target"]["failure_kind"] = "infrastructure";
  if (const auto& prepared = r.prepared_environment) {
    auto& facts = j["target"]["environment"];
    facts = {{"mode", r.environment_mode},
             {"hash", r.environment_hash},
             {"cache_hit", prepared->cache_hit},
             {"seconds", prepared->seconds}};
    if (!prepared->location.empty()) {
      facts[r.environment_mode == "container" ? "image" : "venv"] = prepared->location;
    }
    if (!prepared->python.empty()) facts["python"] = prepared->python;
  }
  j["cancel_requested"] = r.cancel_requested;
  return j;
}

RunRecord run_record_from_json(const nlohmann::json& j) {
  try {
    RunRecord r;
    r.format_version = j.at("format_version").get<int>();
    if (r.format_version > 1) {
      throw util::InfraError(
          fmt::format("run record format {} is newer than this amlrun "
                      "understands (1); upgrade amlrun",
                      r.format_version));
    }
    r.id = j.at("id").get<std::string>();
    const std::string kind = j.value("kind", "job");
    if (kind != "job" && kind != "sweep") {
      throw util::InfraError(fmt::format("unknown kind '{}' (job or sweep)", kind));
    }
    r.kind = kind == "sweep" ? RunKind::sweep : RunKind::job;
    r.experiment = j.value("experiment", "");
    r.display_name = j.value("display_name", "");
    r.description = j.value("description", "");
    if (j.contains("tags")) r.tags = util::tags_from_json(j["tags"]);
    r.tags_revision = j.value("tags_revision", 0);
    if (j.contains("params")) r.params = util::tags_from_json(j["params"]);
    if (j.contains("models")) r.models = util::tags_from_json(j["models"]);
    r.parent_id = j.value("parent_id", "");
    auto state = run_state_from_string(j.at("state").get<std::string>());
    if (!state) throw util::InfraError("unknown state " + j.at("state").dump());
    r.state = *state;
    for (const auto& change : j.value("history", nlohmann::json::array())) {
      auto s = run_state_from_string(change.at("state").get<std::string>());
      if (s) r.history.push_back({*s, change.at("at").get<std::string>()});
    }
    r.created_at = j.value("created_at", "");
    r.started_at = j.value("started_at", "");
    r.ended_at = j.value("ended_at", "");
    if (j.contains("exit_code") && j["exit_code"].is_number_integer()) {
      r.exit_code = j["exit_code"].get<int>();
    }
    r.failure_reason = j.value("failure_reason", "");
    r.warnings = j.value("warnings", std::vector<std::string>{});
    r.compute = j.value("compute", "local");
    r.compute_type = j.value("compute_type", "local");
    if (j.contains("snapshot")) {
      r.snapshot_id = j["snapshot"].value("id", "");
      r.snapshot_files = j["snapshot"].value("files", std::uint64_t{0});
      r.snapshot_bytes = j["snapshot"].value("bytes", std::uint64_t{0});
    }
    if (j.contains("environment")) {
      r.environment_hash = j["environment"].value("hash", "");
      r.environment_mode = j["environment"].value("mode", "host");
    }
    r.instance_count = j.value("instance_count", 1);
    r.process_count = j.value("process_count", 1);
    r.distribution = j.value("distribution", "none");
    r.spec_file = j.value("spec_file", "");
    r.submitted_by = j.value("submitted_by", "");
    r.submit_host = j.value("submit_host", "");
    r.amlrun_version = j.value("amlrun_version", "");
    r.target = j.value("target", nlohmann::json::object());
    if (!r.target.is_object()) r.target = nlohmann::json::object();
    r.infrastructure_failure = r.target.value("failure_kind", "") == "infrastructure";
    r.target.erase("failure_kind");
    if (r.target.contains("environment") && r.target["environment"].is_object()) {
      const auto& facts = r.target["environment"];
      if (facts.contains("cache_hit")) {
        PreparedEnvironment prepared;
        prepared.cache_hit = facts.value("cache_hit", false);
        prepared.seconds = facts.value("seconds", 0.0);
        prepared.location = facts.value(r.environment_mode == "container" ? "image" : "venv", "");
        prepared.python = facts.value("python", "");
        r.prepared_environment = prepared;
      }
    }
    r.target.erase("environment");
    r.cancel_requested = j.value("cancel_requested", false);
    return r;
  } catch (const nlohmann::json::exception& error) {
    throw util::InfraError(fmt::format("not a valid run record: {}", error.what()));
  }
}

}  // namespace amlrun::store
