#include "lib/train/metrics.hpp"

#include <fcntl.h>

#include <fmt/format.h>
#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "lib/util/error.hpp"

namespace amlrun::train {

std::string metric_json_line(std::string_view name, double value, std::int64_t step) {
  std::string value_text;
  if (std::isnan(value)) {
    value_text = "\"NaN\"";
  } else if (std::isinf(value)) {
    value_text = value > 0 ? "\"Infinity\"" : "\"-Infinity\"";
  } else {
    // The shortest text that reads back as the same double.
    value_text = fmt::format("{}", value);
  }
  return fmt::format("{{\"name\": {}, \"value\": {}, \"step\": {}}}",
                     nlohmann::json(std::string(name)).dump(), value_text, step);
}

std::filesystem::path default_metrics_path() {
  const char* from_run = std::getenv("AMLRUN_METRICS_FILE");
  if (from_run != nullptr && *from_run != '\0') {
    return from_run;
  }
  return std::filesystem::path("logs") / "metrics.jsonl";
}

MetricsWriter::MetricsWriter(const std::filesystem::path& path) : m_path(path) {
  if (path.has_parent_path()) {
    std::error_code error;
    std::filesystem::create_directories(path.parent_path(), error);
    if (error) {
      throw util::Error(ExitCode::run_failed,
                        fmt::format("metrics file {}: cannot create its folder: {}", path.string(),
                                    error.message()));
    }
  }
  m_fd = util::UniqueFd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!m_fd) {
    throw util::Error(ExitCode::run_failed,
                      util::errno_message("metrics file " + path.string(), errno));
  }
}

void MetricsWriter::write(std::string_view name, double value, std::int64_t step) {
  util::write_all(m_fd.get(), metric_json_line(name, value, step) + "\n",
                  "metrics file " + m_path.string());
}

}  // namespace amlrun::train
