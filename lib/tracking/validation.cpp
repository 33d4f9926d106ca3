#include "lib/tracking/validation.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <limits>

#include "lib/store/metrics.hpp"
#include "lib/tracking/errors.hpp"
#include "lib/tracking/mlflow_json.hpp"
#include "lib/util/strings.hpp"
#include "lib/util/tags.hpp"

namespace amlrun::tracking {

void invalid_parameter(const std::string& message) {
  throw TrackingError(400, "INVALID_PARAMETER_VALUE", message);
}
void does_not_exist(const std::string& message) {
  throw TrackingError(404, "RESOURCE_DOES_NOT_EXIST", message);
}
void already_exists(const std::string& message) {
  throw TrackingError(400, "RESOURCE_ALREADY_EXISTS", message);
}
void permission_denied(const std::string& message) {
  throw TrackingError(403, "PERMISSION_DENIED", message);
}
void cannot_store(const std::string& message) {
  throw TrackingError(507, "INTERNAL_ERROR", message);
}

namespace {

bool is_word_character(unsigned char c) {
  return std::isalnum(c) || c == '_' || c >= 0x80;  // \w is Unicode-aware in Python
}

// Does `name` read as itself as a POSIX path (posixpath.normpath(name) == name,
// not "." and not above or at the root)?
bool is_unique_as_path(std::string_view name) {
  if (name.empty() || name.front() == '/' || name.back() == '/') return false;
  std::size_t start = 0;
  while (start <= name.size()) {
    std::size_t slash = name.find('/', start);
    std::string_view part = name.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (part.empty() || part == "." || part == "..") return false;
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return true;
}

}  // namespace

void check_key(std::string_view field, std::string_view key) {
  if (key.empty())
    invalid_parameter(fmt::format("Missing value for required parameter '{}'.", field));
  for (unsigned char c : key) {
    if (!is_word_character(c) && c != '/' && c != '.' && c != '-' && c != ' ' && c != ':') {
      invalid_parameter(fmt::format(
          "Invalid value {} for parameter '{}' supplied: Names may only contain alphanumerics, "
          "underscores (_), dashes (-), periods (.), spaces ( ), colon(:) and slashes (/).",
          util::printable(key, 60), field));
    }
  }
  if (!is_unique_as_path(key)) {
    invalid_parameter(fmt::format(
        "Invalid value {} for parameter '{}' supplied: Names may be treated as files in certain "
        "cases, and must not resolve to other names when treated as such.",
        util::printable(key, 60), field));
  }
  if (key.size() > k_max_key_length) {
    invalid_parameter(
        fmt::format("'{}' exceeds the maximum length of {} characters", field, k_max_key_length));
  }
}

void check_metric_name(std::string_view field, std::string_view name) {
  check_key(field, name);
  // ".." inside a name ("a..b") passes MLflow but would read as a parent
  // folder in tools that turn names into paths: refused like "../a".
  if (!store::is_valid_metric_name(name) || name.find("..") != std::string_view::npos) {
    invalid_parameter(fmt::format(
        "Invalid value {} for parameter '{}' supplied: amlrun stores metric names of 1-128 "
        "characters from [A-Za-z0-9_.:/-], starting with a letter, digit or underscore, "
        "without '..' (the rule of $AMLRUN_METRICS_FILE)",
        util::printable(name, 60), field));
  }
}

void check_param(std::string_view field, const std::string& key, const std::string& value) {
  check_key(fmt::format("{}.key", field), key);
  if (value.size() > k_max_param_value_length) {
    invalid_parameter(
        fmt::format("Param value of '{}' had length {}, which exceeded length limit of {}", key,
                    value.size(), k_max_param_value_length));
  }
}

void check_tag(std::string_view field, const std::string& key, const std::string& value) {
  check_key(fmt::format("{}.key", field), key);
  if (key.starts_with("mlflow.")) return;  // the client's own tags, kept beside the record
  if (auto problem = util::tag_key_problem(key)) invalid_parameter(*problem);
  if (auto problem = util::tag_value_problem(key, value)) invalid_parameter(*problem);
}

std::string required_string(const nlohmann::json& body, const char* field) {
  auto found = body.find(field);
  if (found == body.end() || found->is_null()) {
    invalid_parameter(fmt::format("Missing value for required parameter '{}'.", field));
  }
  if (!found->is_string()) {
    invalid_parameter(fmt::format("Invalid value {} for parameter '{}' supplied: expected a string",
                                  util::printable(found->dump(), 60), field));
  }
  return found->get<std::string>();
}

std::int64_t int64_field(const nlohmann::json& body, const char* field, std::int64_t fallback) {
  auto found = body.find(field);
  if (found == body.end() || found->is_null()) return fallback;
  if (found->is_number_integer()) return found->get<std::int64_t>();
  if (found->is_string()) {
    const std::string& text = found->get_ref<const std::string&>();
    std::int64_t value = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error == std::errc() && end == text.data() + text.size() && !text.empty()) return value;
  }
  invalid_parameter(fmt::format("Invalid value {} for parameter '{}' supplied: expected an integer",
                                util::printable(found->dump(), 60), field));
}

double metric_value(const nlohmann::json& body, const std::string& field) {
  auto found = body.find("value");
  if (found != body.end() && found->is_number()) return found->get<double>();
  if (found != body.end() && found->is_string()) {
    const std::string& text = found->get_ref<const std::string&>();
    if (text == "NaN") return std::numeric_limits<double>::quiet_NaN();
    if (text == "Infinity") return std::numeric_limits<double>::infinity();
    if (text == "-Infinity") return -std::numeric_limits<double>::infinity();
  }
  if (found == body.end() || found->is_null()) {
    invalid_parameter(fmt::format("Missing value for required parameter '{}'.", field));
  }
  invalid_parameter(
      fmt::format("Invalid value {} for parameter '{}' supplied: expected a number, \"NaN\", "
                  "\"Infinity\" or \"-Infinity\"",
                  util::printable(found->dump(), 60), field));
}

std::string check_artifact_path(std::string_view path, bool allow_empty) {
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  if (path.empty()) {
    if (allow_empty) return "";
    invalid_parameter("the artifact path is empty; name a file below the run's outputs");
  }
  for (unsigned char c : path) {
    if (c < 0x20 || c == 0x7f) {
      invalid_parameter(fmt::format("Invalid artifact path {}: control characters are not allowed",
                                    util::printable(path, 80)));
    }
  }
  if (!is_unique_as_path(path)) {
    invalid_parameter(fmt::format(
        "Invalid artifact path {}: it must stay below the run's outputs (relative, without "
        "empty, '.' or '..' components)",
        util::printable(path, 80)));
  }
  return std::string(path);
}

std::string run_id_field(const nlohmann::json& body) {
  if (body.contains("run_id") && body["run_id"].is_string()) return body["run_id"];
  if (body.contains("run_uuid") && body["run_uuid"].is_string()) return body["run_uuid"];
  return required_string(body, "run_id");
}

Metric parse_metric(const nlohmann::json& body, const std::string& field) {
  Metric metric;
  std::string key_field = field.empty() ? "key" : field + ".key";
  auto key = body.find("key");
  if (key == body.end() || !key->is_string()) {
    invalid_parameter(fmt::format("Missing value for required parameter '{}'.", key_field));
  }
  metric.key = key->get<std::string>();
  check_metric_name(key_field, metric.key);
  metric.value = metric_value(body, field.empty() ? "value" : field + ".value");
  metric.timestamp = int64_field(body, "timestamp", now_ms());
  metric.step = int64_field(body, "step", 0);
  if (metric.step < 0) {
    invalid_parameter(
        fmt::format("Invalid value {} for parameter '{}' supplied: amlrun stores steps from 0 up",
                    metric.step, field.empty() ? "step" : field + ".step"));
  }
  return metric;
}

std::vector<std::pair<std::string, std::string>> parse_pairs(const nlohmann::json& body,
                                                             const char* field, bool params) {
  std::vector<std::pair<std::string, std::string>> pairs;
  auto list = body.find(field);
  if (list == body.end() || list->is_null()) return pairs;
  if (!list->is_array()) {
    invalid_parameter(
        fmt::format("Invalid value for parameter '{}' supplied: expected a list", field));
  }
  for (std::size_t i = 0; i < list->size(); ++i) {
    const nlohmann::json& item = (*list)[i];
    std::string where = fmt::format("{}[{}]", field, i);
    if (!item.is_object()) {
      invalid_parameter(
          fmt::format("Invalid value for parameter '{}' supplied: expected an "
                      "object with key and value",
                      where));
    }
    std::string key = item.contains("key") && item["key"].is_string() ? item["key"] : "";
    std::string value = item.contains("value") && item["value"].is_string() ? item["value"] : "";
    if (params) {
      check_param(where, key, value);
    } else {
      check_tag(where, key, value);
    }
    pairs.emplace_back(std::move(key), std::move(value));
  }
  return pairs;
}

}  // namespace amlrun::tracking
