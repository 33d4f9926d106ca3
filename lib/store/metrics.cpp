#include "lib/store/metrics.hpp"

#include <fmt/format.h>
#include <cmath>
#include <limits>

#include "lib/store/database.hpp"

namespace amlrun::store {

namespace {

bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// A NULL value stands for NaN: SQLite stores NaN as NULL (±Infinity it keeps).
double value_or_nan(const Statement& row, int column) {
  return row.is_null(column) ? std::numeric_limits<double>::quiet_NaN() : row.real(column);
}

}  // namespace

bool is_valid_metric_name(std::string_view name) {
  if (name.empty() || name.size() > 128 || !is_name_start(name[0])) return false;
  for (char c : name) {
    if (!is_name_start(c) && c != '.' && c != ':' && c != '/' && c != '-') return false;
  }
  return true;
}

std::vector<MetricSummary> metric_summaries(const RunStore& store, const std::string& run_id) {
  Statement query(store.database(),
                  "SELECT name, count, non_finite, last_step, last_value, min_value, max_value "
                  "FROM metric_series WHERE run_id = ?1 AND count > 0 ORDER BY name");
  query.bind(1, run_id);
  std::vector<MetricSummary> summaries;
  while (query.step()) {
    MetricSummary summary;
    summary.name = query.text(0);
    summary.count = query.integer(1);
    summary.non_finite = query.integer(2);
    summary.last_step = query.integer(3);
    summary.last_value = value_or_nan(query, 4);
    if (!query.is_null(5)) summary.min = query.real(5);
    if (!query.is_null(6)) summary.max = query.real(6);
    summaries.push_back(std::move(summary));
  }
  return summaries;
}

std::vector<MetricPoint> metric_points(const RunStore& store, const std::string& run_id,
                                       const std::string& name) {
  std::string sql =
      "SELECT s.name, p.rank, p.step, p.value FROM metric_series s JOIN metric_points p "
      "ON p.series_id = s.series_id WHERE s.run_id = ?1";
  if (!name.empty()) sql += " AND s.name = ?2";
  sql += " ORDER BY s.name, p.seq";
  Statement query(store.database(), sql.c_str());
  query.bind(1, run_id);
  if (!name.empty()) query.bind(2, name);
  std::vector<MetricPoint> points;
  while (query.step()) {
    points.push_back({query.text(0), static_cast<int>(query.integer(1)), query.integer(2),
                      value_or_nan(query, 3)});
  }
  return points;
}

IngestReport ingest_report(const RunStore& store, const std::string& run_id) {
  IngestReport report;
  Statement sources(store.database(),
                    "SELECT malformed, bad_name, backwards, first_problem FROM metric_sources "
                    "WHERE run_id = ?1 ORDER BY rank");
  sources.bind(1, run_id);
  while (sources.step()) {
    report.malformed += sources.integer(0);
    report.bad_name += sources.integer(1);
    report.backwards += sources.integer(2);
    if (report.first_problem.empty()) report.first_problem = sources.text(3);
  }
  Statement series(store.database(),
                   "SELECT COALESCE(SUM(non_finite), 0) FROM metric_series WHERE run_id = ?1");
  series.bind(1, run_id);
  if (series.step()) report.non_finite = series.integer(0);
  return report;
}

bool has_ingested_metrics(const RunStore& store, const std::string& run_id) {
  Statement query(store.database(), "SELECT 1 FROM metric_sources WHERE run_id = ?1 LIMIT 1");
  query.bind(1, run_id);
  return query.step();
}

std::map<int, std::int64_t> ingested_offsets(const RunStore& store, const std::string& run_id) {
  Statement query(store.database(), "SELECT rank, offset FROM metric_sources WHERE run_id = ?1");
  query.bind(1, run_id);
  std::map<int, std::int64_t> offsets;
  while (query.step()) offsets[static_cast<int>(query.integer(0))] = query.integer(1);
  return offsets;
}

std::vector<std::string> runs_with_metrics(const RunStore& store) {
  Statement query(store.database(),
                  "SELECT run_id FROM metric_sources UNION SELECT run_id FROM metric_series");
  std::vector<std::string> ids;
  while (query.step()) ids.push_back(query.text(0));
  return ids;
}

void delete_run_metrics(const RunStore& store, const std::string& run_id) {
  Transaction transaction(store.database());
  for (const char* sql : {"DELETE FROM metric_points WHERE series_id IN "
                          "(SELECT series_id FROM metric_series WHERE run_id = ?1)",
                          "DELETE FROM metric_series WHERE run_id = ?1",
                          "DELETE FROM metric_sources WHERE run_id = ?1"}) {
    Statement remove(store.database(), sql);
    remove.bind(1, run_id);
    remove.step();
  }
  transaction.commit();
}

std::string format_metric_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "Infinity" : "-Infinity";
  return fmt::format("{}", value);
}

}  // namespace amlrun::store
