#include "lib/tracking/logged_models.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "lib/tracking/errors.hpp"
#include "lib/tracking/mlflow_json.hpp"
#include "lib/tracking/validation.hpp"
#include "lib/util/names.hpp"
#include "lib/util/random.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::tracking {

using nlohmann::json;

namespace {

constexpr std::size_t k_max_name_length = 256;
constexpr std::int64_t k_default_page = 100;

void check_name(const std::string& name) {
  bool control = std::any_of(name.begin(), name.end(),
                             [](char c) { return static_cast<unsigned char>(c) < 0x20; });
  if (name.size() > k_max_name_length || control) {
    invalid_parameter(
        fmt::format("Invalid model name {}: use at most {} characters and no control characters",
                    util::printable(name, 60), k_max_name_length));
  }
}

// An id or key from the URL inside a message: as MLflow writes it when it
// is a plain name, escaped and quoted otherwise.
std::string shown(const std::string& text) {
  return util::is_valid_name(text) ? text : util::printable(text, 80);
}

bool valid_status(const std::string& status) {
  return status == "LOGGED_MODEL_PENDING" || status == "LOGGED_MODEL_READY" ||
         status == "LOGGED_MODEL_UPLOAD_FAILED";
}

// One clause of a search filter: `field = 'value'`.
struct Clause {
  std::string field;
  std::string value;
};

std::vector<Clause> parse_filter(const std::string& filter) {
  std::vector<Clause> clauses;
  std::string_view rest = filter;
  auto refuse = [&] {
    invalid_parameter(fmt::format(
        "Invalid filter {}: amlrun's endpoint filters logged models by name, source_run_id, "
        "model_type and status, as \"name = 'model' AND source_run_id = '...'\"",
        util::printable(filter, 120)));
  };
  auto skip_spaces = [&] {
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  };
  skip_spaces();
  while (!rest.empty()) {
    std::size_t end = rest.find_first_of(" =");
    if (end == std::string_view::npos) refuse();
    std::string field(rest.substr(0, end));
    if (field.starts_with("attributes.")) field.erase(0, 11);
    if (field != "name" && field != "source_run_id" && field != "model_type" && field != "status") {
      refuse();
    }
    rest.remove_prefix(end);
    skip_spaces();
    if (!rest.starts_with('=')) refuse();
    rest.remove_prefix(1);
    skip_spaces();
    if (rest.empty() || (rest.front() != '\'' && rest.front() != '"')) refuse();
    char quote = rest.front();
    std::size_t close = rest.find(quote, 1);
    if (close == std::string_view::npos) refuse();
    clauses.push_back({field, std::string(rest.substr(1, close - 1))});
    rest.remove_prefix(close + 1);
    skip_spaces();
    if (rest.empty()) break;
    if (!(rest.starts_with("AND ") || rest.starts_with("and "))) refuse();
    rest.remove_prefix(4);
    skip_spaces();
  }
  return clauses;
}

bool matches(const LoggedModel& model, const std::vector<Clause>& clauses) {
  for (const auto& [field, value] : clauses) {
    const std::string& actual = field == "name"            ? model.name
                                : field == "source_run_id" ? model.source_run_id
                                : field == "model_type"    ? model.model_type
                                                           : model.status;
    // The client writes status as READY; the record keeps LOGGED_MODEL_READY.
    if (actual != value && !(field == "status" && actual == "LOGGED_MODEL_" + value)) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string logged_model_relative(const std::string& model_id) {
  return "models/" + model_id;
}

std::string logged_model_artifact_uri(const std::string& run_id, const std::string& model_id) {
  return fmt::format("mlflow-artifacts:/{}/outputs/{}", run_id, logged_model_relative(model_id));
}

json logged_model_json(const LoggedModel& model) {
  json tags = json::array();
  for (const auto& [key, value] : model.tags) tags.push_back({{"key", key}, {"value", value}});
  json params = json::array();
  for (const auto& [key, value] : model.params) params.push_back({{"key", key}, {"value", value}});
  json info = {{"model_id", model.id},
               {"experiment_id", model.experiment_id},
               {"name", model.name},
               {"artifact_uri", logged_model_artifact_uri(model.source_run_id, model.id)},
               {"creation_timestamp_ms", model.created_ms},
               {"last_updated_timestamp_ms", model.updated_ms},
               {"source_run_id", model.source_run_id},
               {"status", model.status},
               {"tags", tags}};
  if (!model.model_type.empty()) info["model_type"] = model.model_type;
  if (!model.status_message.empty()) info["status_message"] = model.status_message;
  return {{"info", info}, {"data", {{"params", params}, {"metrics", json::array()}}}};
}

const LoggedModel& LoggedModels::create(const json& body, const std::string& experiment_id,
                                        const std::string& source_run_id) {
  if (m_models.size() >= k_max_logged_models) {
    cannot_store(
        fmt::format("this run has logged {} models, the most one run keeps", k_max_logged_models));
  }
  LoggedModel model;
  model.id = "m-" + util::random_hex(16);
  model.experiment_id = experiment_id;
  model.source_run_id = source_run_id;
  model.name =
      body.contains("name") && body["name"].is_string() ? body["name"].get<std::string>() : "";
  if (model.name.empty()) model.name = "model-" + util::random_hex(4);
  check_name(model.name);
  model.model_type = body.contains("model_type") && body["model_type"].is_string()
                         ? body["model_type"].get<std::string>()
                         : "";
  check_name(model.model_type);
  for (auto& [key, value] : parse_pairs(body, "tags", /*params=*/false)) model.tags[key] = value;
  for (auto& [key, value] : parse_pairs(body, "params", /*params=*/true)) {
    model.params[key] = value;
  }
  model.created_ms = model.updated_ms = now_ms();
  auto [stored, inserted] = m_models.emplace(model.id, std::move(model));
  (void)inserted;
  return stored->second;
}

LoggedModel& LoggedModels::find(const std::string& model_id) {
  auto found = m_models.find(model_id);
  if (found == m_models.end()) {
    does_not_exist(fmt::format("Logged model with ID '{}' not found.", shown(model_id)));
  }
  return found->second;
}

const LoggedModel& LoggedModels::get(const std::string& model_id) const {
  return const_cast<LoggedModels*>(this)->find(model_id);
}

const LoggedModel& LoggedModels::finalize(const std::string& model_id, const json& body) {
  LoggedModel& model = find(model_id);
  std::string status = body.contains("status") && body["status"].is_string()
                           ? body["status"].get<std::string>()
                           : "";
  if (!valid_status(status) || status == "LOGGED_MODEL_PENDING") {
    invalid_parameter(
        fmt::format("Invalid value {} for parameter 'status' supplied: use LOGGED_MODEL_READY or "
                    "LOGGED_MODEL_UPLOAD_FAILED",
                    util::printable(status, 40)));
  }
  model.status = status;
  model.updated_ms = now_ms();
  return model;
}

void LoggedModels::set_tags(const std::string& model_id, const json& body) {
  LoggedModel& model = find(model_id);
  for (auto& [key, value] : parse_pairs(body, "tags", /*params=*/false)) model.tags[key] = value;
  model.updated_ms = now_ms();
}

void LoggedModels::delete_tag(const std::string& model_id, const std::string& key) {
  LoggedModel& model = find(model_id);
  if (model.tags.erase(key) == 0) {
    does_not_exist(fmt::format("No tag with key '{}' found for logged model with ID '{}'.",
                               shown(key), model_id));
  }
  model.updated_ms = now_ms();
}

void LoggedModels::log_params(const std::string& model_id, const json& body) {
  LoggedModel& model = find(model_id);
  for (auto& [key, value] : parse_pairs(body, "params", /*params=*/true)) {
    model.params[key] = value;
  }
  model.updated_ms = now_ms();
}

json LoggedModels::search(const json& body) const {
  std::vector<std::string> experiments;
  if (body.contains("experiment_ids") && body["experiment_ids"].is_array()) {
    for (const auto& id : body["experiment_ids"]) {
      if (id.is_string()) experiments.push_back(id.get<std::string>());
    }
  }
  auto clauses = parse_filter(body.value("filter", ""));
  std::int64_t max_results = int64_field(body, "max_results", k_default_page);
  if (max_results < 1 || max_results > 50000) {
    invalid_parameter("Invalid value for parameter 'max_results': use 1 to 50000");
  }
  std::string token = body.value("page_token", "");
  std::size_t offset = 0;
  if (!token.empty()) {
    auto [end, error] = std::from_chars(token.data(), token.data() + token.size(), offset);
    if (error != std::errc() || end != token.data() + token.size()) {
      invalid_parameter(fmt::format("Invalid page token {}", util::printable(token, 40)));
    }
  }
  std::vector<const LoggedModel*> found;
  for (const auto& [id, model] : m_models) {
    bool in_experiment =
        std::find(experiments.begin(), experiments.end(), model.experiment_id) != experiments.end();
    if (in_experiment && matches(model, clauses)) found.push_back(&model);
  }
  std::sort(found.begin(), found.end(), [](const LoggedModel* a, const LoggedModel* b) {
    return std::tie(b->created_ms, b->id) < std::tie(a->created_ms, a->id);
  });
  json models = json::array();
  std::size_t end = std::min(found.size(), offset + static_cast<std::size_t>(max_results));
  for (std::size_t i = offset; i < end; ++i) models.push_back(logged_model_json(*found[i]));
  json answer = {{"models", models}};
  if (end < found.size()) answer["next_page_token"] = std::to_string(end);
  return answer;
}

}  // namespace amlrun::tracking
