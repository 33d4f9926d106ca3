#pragma once
// The web view's pages as HTML, from data already read (web_app.cpp reads
// it): pure functions, so tests check what a page says about hostile names
// without a server. Every value from a run goes through html.hpp.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/compute/sweep/sweep_summary.hpp"
#include "lib/registry/model_registry.hpp"
#include "lib/store/metrics.hpp"
#include "lib/store/run_store.hpp"

namespace amlrun::ui {

// The page around a body: head (title, stylesheet, script), the top bar and
// the page's data for the script as a JSON block.
std::string page_shell(const std::string& title, const std::string& body,
                       const nlohmann::json& data = nullptr);

struct RunsView {
  std::string experiment, status, tag;  // the filters as typed
  std::vector<store::IndexRow> rows;
  std::int64_t total = 0;
  int offset = 0;
  int limit = 50;
  std::string now;  // ISO 8601: durations of runs still going
};
std::string runs_page(const RunsView& view);

struct SweepView {
  compute::SweepSummary summary;
  std::vector<std::pair<std::string, std::string>> settings;  // describe_settings
  std::string primary_metric;
  std::string parallel_svg;
  std::string curves_svg;  // the primary metric of every trial, overlaid
};

struct FileEntry {
  std::string name;
  bool directory = false;
  std::uint64_t size = 0;
};

struct RunView {
  store::RunRecord record;
  std::string now;
  std::vector<store::MetricSummary> metrics;
  std::vector<std::string> chosen;   // metrics drawn
  std::vector<std::string> compare;  // other runs drawn beside it
  std::string charts_svg;
  int rank = 0;
  int ranks = 1;
  bool log_found = false;
  std::uint64_t log_size = 0;
  std::uint64_t log_start = 0;  // the page shows the log from here
  std::uint64_t log_end = 0;    // to here (bytes); the live log goes on from it
  std::string log_text;
  std::vector<store::IndexRow> children;
  std::int64_t children_total = 0;
  std::vector<std::pair<std::string, std::vector<FileEntry>>> files;  // outputs, logs
  std::optional<SweepView> sweep;
  std::string csrf;    // the Cancel form's token
  std::string notice;  // a line at the top ("cancel requested")
};
std::string run_page(const RunView& view);

struct FilesView {
  std::string run_id;
  std::string path;  // below artifacts/, "" at the top
  std::vector<FileEntry> entries;
};
std::string files_page(const FilesView& view);

struct ModelView {
  registry::ModelVersion version;
  std::vector<registry::ModelFile> files;
  std::string problem;  // the manifest could not be read
};
std::string models_page(const std::vector<ModelView>& models);

std::string error_page(int status, const std::string& message);

// "1h 02m", from ISO 8601 times ("" end: until `now`).
std::string duration_between(const std::string& start, const std::string& end,
                             const std::string& now);

}  // namespace amlrun::ui
