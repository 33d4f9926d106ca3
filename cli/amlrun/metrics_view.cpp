#include "cli/amlrun/metrics_view.hpp"

#include <fmt/format.h>
#include <cmath>
#include <vector>

#include "lib/util/strings.hpp"

namespace amlrun::cli {

nlohmann::ordered_json metric_value_json(double value) {
  if (std::isfinite(value)) return value;
  return store::format_metric_value(value);
}

std::string short_metric_value(double value) {
  if (!std::isfinite(value)) return store::format_metric_value(value);
  return fmt::format("{:.6g}", value);
}

nlohmann::ordered_json metrics_summary_json(const std::vector<store::MetricSummary>& summaries) {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  for (const auto& s : summaries) {
    out[s.name] = {
        {"last", metric_value_json(s.last_value)},
        {"last_step", s.last_step},
        {"min", s.min ? nlohmann::ordered_json(*s.min) : nlohmann::ordered_json(nullptr)},
        {"max", s.max ? nlohmann::ordered_json(*s.max) : nlohmann::ordered_json(nullptr)},
        {"count", s.count},
        {"non_finite", s.non_finite}};
  }
  return out;
}

nlohmann::ordered_json ingest_report_json(const store::IngestReport& report) {
  return {{"malformed", report.malformed},
          {"bad_name", report.bad_name},
          {"backwards", report.backwards},
          {"non_finite", report.non_finite},
          {"first_problem", report.first_problem}};
}

std::string skipped_text(const store::IngestReport& report) {
  std::vector<std::string> parts;
  if (report.malformed) parts.push_back(fmt::format("{} malformed", report.malformed));
  if (report.bad_name) {
    parts.push_back(fmt::format("{} bad name{}", report.bad_name, report.bad_name == 1 ? "" : "s"));
  }
  if (report.backwards) {
    parts.push_back(fmt::format("{} step{} going backwards", report.backwards,
                                report.backwards == 1 ? "" : "s"));
  }
  std::int64_t total = report.skipped();
  return fmt::format("{} line{} ({}); first: {}", total, total == 1 ? "" : "s",
                     util::join(parts, ", "), report.first_problem);
}

}  // namespace amlrun::cli
