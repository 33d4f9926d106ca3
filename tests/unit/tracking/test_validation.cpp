#include <catch2/catch.hpp>

#include "../test_support.hpp"
#include "lib/tracking/errors.hpp"
#include "lib/tracking/validation.hpp"

using namespace amlrun;
using unit_test::message_of;

namespace {

// The code and status of the TrackingError the action throws, or "none".
std::string code_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const tracking::TrackingError& error) {
    return std::to_string(error.status()) + " " + error.code();
  }
  return "none";
}

}  // namespace

TEST_CASE("keys follow MLflow's rule: its characters, and a name that stays itself as a path") {
  for (const char* good : {"lr", "val/acc", "a b", "x:y", "train.loss_0", "a-b"}) {
    CHECK(code_of([&] { tracking::check_key("key", good); }) == "none");
  }
  for (const char* bad :
       {"", "a/../b", "../a", "./a", "/a", "a/", "..", "a//b", "a\nb", "a=b", "a\x01"}) {
    CHECK(code_of([&] { tracking::check_key("key", bad); }) == "400 INVALID_PARAMETER_VALUE");
  }
  CHECK(message_of([] { tracking::check_key("key", "a/../b"); }) ==
        "Invalid value 'a/../b' for parameter 'key' supplied: Names may be treated as files in "
        "certain cases, and must not resolve to other names when treated as such.");
  CHECK(code_of([] { tracking::check_key("key", std::string(251, 'k')); }) ==
        "400 INVALID_PARAMETER_VALUE");
}

TEST_CASE("metric names also follow the metrics protocol's rule, without '..'") {
  CHECK(code_of([] { tracking::check_metric_name("key", "loss"); }) == "none");
  CHECK(code_of([] { tracking::check_metric_name("key", "a..b"); }) ==
        "400 INVALID_PARAMETER_VALUE");
  CHECK(code_of([] { tracking::check_metric_name("key", "with space"); }) ==
        "400 INVALID_PARAMETER_VALUE");
  CHECK(message_of([] { tracking::check_metric_name("metrics[3].key", "a..b"); }) ==
        "Invalid value 'a..b' for parameter 'metrics[3].key' supplied: amlrun stores metric "
        "names of 1-128 characters from [A-Za-z0-9_.:/-], starting with a letter, digit or "
        "underscore, without '..' (the rule of $AMLRUN_METRICS_FILE)");
}

TEST_CASE("param values are limited to MLflow's 6000 characters, tags to amlrun's tag rule") {
  CHECK(code_of([] { tracking::check_param("key", "p", std::string(6000, 'v')); }) == "none");
  CHECK(code_of([] { tracking::check_param("key", "p", std::string(6001, 'v')); }) ==
        "400 INVALID_PARAMETER_VALUE");
  CHECK(code_of([] { tracking::check_tag("key", "team", "vision"); }) == "none");
  CHECK(code_of([] { tracking::check_tag("key", "team", std::string(1025, 'v')); }) ==
        "400 INVALID_PARAMETER_VALUE");
  // The client's own tags are kept beside the record, not under its rule.
  CHECK(code_of([] {
          tracking::check_tag("key", "mlflow.log-model.history", std::string(5000, 'v'));
        }) == "none");
}

TEST_CASE("int64 fields come as numbers or as protobuf's strings") {
  auto body = nlohmann::json::parse(R"({"a": 12, "b": "13", "c": "x", "d": 1.5})");
  CHECK(tracking::int64_field(body, "a", 0) == 12);
  CHECK(tracking::int64_field(body, "b", 0) == 13);
  CHECK(tracking::int64_field(body, "missing", 7) == 7);
  CHECK(code_of([&] { tracking::int64_field(body, "c", 0); }) == "400 INVALID_PARAMETER_VALUE");
  CHECK(code_of([&] { tracking::int64_field(body, "d", 0); }) == "400 INVALID_PARAMETER_VALUE");
}

TEST_CASE("metric values are numbers or protobuf's NaN and Infinity strings") {
  CHECK(tracking::metric_value(nlohmann::json::parse(R"({"value": 0.5})"), "value") == 0.5);
  CHECK(std::isnan(tracking::metric_value(nlohmann::json::parse(R"({"value": "NaN"})"), "value")));
  CHECK(tracking::metric_value(nlohmann::json::parse(R"({"value": "-Infinity"})"), "value") ==
        -std::numeric_limits<double>::infinity());
  CHECK(code_of([] {
          tracking::metric_value(nlohmann::json::parse(R"({"value": "nan"})"), "value");
        }) == "400 INVALID_PARAMETER_VALUE");
  CHECK(code_of([] { tracking::metric_value(nlohmann::json::parse(R"({})"), "value"); }) ==
        "400 INVALID_PARAMETER_VALUE");
}

TEST_CASE("artifact paths stay below the outputs") {
  CHECK(tracking::check_artifact_path("model/model.pkl", false) == "model/model.pkl");
  CHECK(tracking::check_artifact_path("dir/", false) == "dir");
  CHECK(tracking::check_artifact_path("", true) == "");
  for (const char* bad : {"../x", "a/../../x", "/etc/passwd", "a//b", "./a", "..", "a\nb"}) {
    CHECK(code_of([&] { tracking::check_artifact_path(bad, false); }) ==
          "400 INVALID_PARAMETER_VALUE");
  }
  CHECK(code_of([] { tracking::check_artifact_path("", false); }) == "400 INVALID_PARAMETER_VALUE");
}
