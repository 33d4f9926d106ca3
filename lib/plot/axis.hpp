#pragma once
// Axis arithmetic shared by both renderers: "nice" tick values (1, 2, 5 ×
// 10^k apart) covering a range, and their labels.
#include <string>
#include <vector>

namespace amlrun::plot {

// The largest magnitude a chart draws; a finite value beyond it is drawn at
// this edge, and the chart says so. Small enough that every step of the
// axis arithmetic (a span of twice it, a nice tick step beyond that) stays
// finite: finite data always gives finite coordinates.
inline constexpr double k_drawable_limit = 1e300;

// `value` clamped to ±k_drawable_limit; NaN and ±Infinity pass unchanged
// (they break lines, they are not drawn).
double clip_to_drawable(double value);

struct Axis {
  double low = 0, high = 1;  // the drawn range: the data's, widened to whole ticks
  double tick_step = 1;
  std::vector<double> ticks;  // from low to high, inclusive
};

// An axis over [data_low, data_high] with about `target_ticks` ticks. An empty
// range (one value) is widened around that value. The range is clipped to
// ±k_drawable_limit first.
Axis nice_axis(double data_low, double data_high, int target_ticks);

// A tick label: as few digits as the tick spacing needs ("0.25", "1e+06",
// "1200").
std::string tick_label(double value, double tick_step);

}  // namespace amlrun::plot
