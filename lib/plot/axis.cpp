#include "lib/plot/axis.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <cmath>

namespace amlrun::plot {

namespace {

// The nice number (1, 2, 5 × 10^k) nearest above `raw`.
double nice_step(double raw) {
  double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double fraction = raw / magnitude;
  double nice = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10;
  return nice * magnitude;
}

// The smallest half-width of an axis: tick steps stay normal doubles (a
// subnormal step loses its digits, a zero one divides by zero).
constexpr double k_smallest_pad = 1e-300;

}  // namespace

double clip_to_drawable(double value) {
  if (std::isnan(value) || std::isinf(value)) return value;
  return std::clamp(value, -k_drawable_limit, k_drawable_limit);
}

Axis nice_axis(double data_low, double data_high, int target_ticks) {
  if (!std::isfinite(data_low) || !std::isfinite(data_high)) data_low = data_high = 0;
  data_low = clip_to_drawable(data_low);
  data_high = clip_to_drawable(data_high);
  if (data_low > data_high) std::swap(data_low, data_high);
  if (data_high - data_low < 1e-12 * std::max(1.0, std::fabs(data_high))) {
    double pad = data_low == 0 ? 1 : std::max(std::fabs(data_low) * 0.1, k_smallest_pad);
    data_low -= pad;
    data_high += pad;
  }
  Axis axis;
  axis.tick_step = nice_step((data_high - data_low) / std::max(1, target_ticks - 1));
  axis.low = std::floor(data_low / axis.tick_step) * axis.tick_step;
  axis.high = std::ceil(data_high / axis.tick_step) * axis.tick_step;
  // Whole-tick multiples avoid the drift of adding the step repeatedly.
  auto first = static_cast<long long>(std::llround(axis.low / axis.tick_step));
  auto last = static_cast<long long>(std::llround(axis.high / axis.tick_step));
  for (long long i = first; i <= last && axis.ticks.size() < 100; ++i) {
    double tick = static_cast<double>(i) * axis.tick_step;
    axis.ticks.push_back(std::fabs(tick) < axis.tick_step * 1e-9 ? 0.0 : tick);
  }
  return axis;
}

std::string tick_label(double value, double tick_step) {
  double magnitude = std::max(std::fabs(value), tick_step);
  if (magnitude >= 1e6 || magnitude < 1e-4) return fmt::format("{:.3g}", value);
  // Enough decimals to tell neighbouring ticks apart.
  int decimals = std::max(0, static_cast<int>(std::ceil(-std::log10(tick_step) - 1e-9)));
  return fmt::format("{:.{}f}", value, decimals);
}

}  // namespace amlrun::plot
