#pragma once
// Line charts of metrics, drawn two ways from the same description: Unicode
// braille in a terminal (terminal_chart.hpp) and SVG (svg_chart.hpp).
#include <string>
#include <utility>
#include <vector>

namespace amlrun::plot {

struct Series {
  std::string label;  // the legend: a run id, "run (rank 1)", ...
  // (step, value) in drawing order; a non-finite value breaks the line.
  std::vector<std::pair<double, double>> points;
};

// One chart: one metric, one line per run.
struct Panel {
  std::string title;  // the metric name
  std::string x_label = "step";
  std::vector<Series> series;
};

// The extent of the finite points of a panel, clipped to
// ±k_drawable_limit (axis.hpp); `empty` when there is none, `clipped` when a
// finite value lay beyond the limit (the chart then says so).
struct Extent {
  double x_min = 0, x_max = 0, y_min = 0, y_max = 0;
  bool empty = true;
  bool clipped = false;
};
Extent extent_of(const Panel& panel);

// The points as drawn: coordinates clipped to ±k_drawable_limit.
std::vector<std::pair<double, double>> drawable_points(
    const std::vector<std::pair<double, double>>& points);

// The note a chart shows when its extent was clipped.
std::string clipped_note();

// At most about 4 × `buckets` points that draw the same picture at that many
// pixels across [x_low, x_high]: per bucket the first, lowest, highest and
// last point, in their order (a million-point series becomes a small SVG).
// Non-finite points are kept where they break the line.
std::vector<std::pair<double, double>> reduce_for_width(
    const std::vector<std::pair<double, double>>& points, double x_low, double x_high, int buckets);

}  // namespace amlrun::plot
