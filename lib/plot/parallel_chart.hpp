#pragma once
// A parallel-coordinates chart in SVG: one vertical axis per parameter and
// a last one for the objective, one polyline per trial through its values,
// coloured from the best objective (blue) to the worst (red); a trial with
// no objective is grey. An axis whose values are all numbers is linear (a
// log axis when asked); any other is categorical (its values in order of
// first appearance). Elements carry classes and data-* attributes (axis,
// trial) so tools and tests can read the chart back.
#include <optional>
#include <string>
#include <vector>

namespace amlrun::plot {

struct ParallelValue {
  std::string text;              // as shown on a categorical axis
  std::optional<double> number;  // set when the value is a number
};

struct ParallelLine {
  std::string label;  // the trial
  // One per parameter axis, in axis order; an empty text with no number:
  // the trial has no value there (a nested parameter of another option).
  std::vector<ParallelValue> values;
  std::optional<double> objective;
};

struct ParallelChart {
  std::string title;
  std::vector<std::string> axes;  // parameter names
  std::string objective_name;
  bool lower_is_better = true;
  std::vector<ParallelLine> lines;
};

std::string render_parallel_svg(const ParallelChart& chart, int width = 900, int height = 420);

}  // namespace amlrun::plot
