#include "lib/plot/chart.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <cmath>

#include "lib/plot/axis.hpp"

namespace amlrun::plot {

Extent extent_of(const Panel& panel) {
  Extent extent;
  for (const auto& series : panel.series) {
    for (const auto& [raw_x, raw_y] : series.points) {
      if (!std::isfinite(raw_x) || !std::isfinite(raw_y)) continue;
      double x = clip_to_drawable(raw_x);
      double y = clip_to_drawable(raw_y);
      if (x != raw_x || y != raw_y) extent.clipped = true;
      if (extent.empty) {
        extent = {x, x, y, y, false, extent.clipped};
        continue;
      }
      extent.x_min = std::min(extent.x_min, x);
      extent.x_max = std::max(extent.x_max, x);
      extent.y_min = std::min(extent.y_min, y);
      extent.y_max = std::max(extent.y_max, y);
    }
  }
  return extent;
}

std::vector<std::pair<double, double>> drawable_points(
    const std::vector<std::pair<double, double>>& points) {
  std::vector<std::pair<double, double>> out;
  out.reserve(points.size());
  for (const auto& [x, y] : points) out.emplace_back(clip_to_drawable(x), clip_to_drawable(y));
  return out;
}

std::string clipped_note() {
  return fmt::format("values beyond ±{:g} are drawn at the edge", k_drawable_limit);
}

std::vector<std::pair<double, double>> reduce_for_width(
    const std::vector<std::pair<double, double>>& points, double x_low, double x_high,
    int buckets) {
  if (points.size() <= static_cast<std::size_t>(buckets) * 4 || x_high <= x_low || buckets < 1) {
    return points;
  }
  std::vector<std::pair<double, double>> out;
  std::size_t i = 0;
  while (i < points.size()) {
    const auto& first = points[i];
    if (!std::isfinite(first.first) || !std::isfinite(first.second)) {
      if (out.empty() || std::isfinite(out.back().second)) out.push_back(first);  // the break
      ++i;
      continue;
    }
    auto bucket_of = [&](double x) {
      return static_cast<long>(std::floor((x - x_low) / (x_high - x_low) * buckets));
    };
    long bucket = bucket_of(first.first);
    std::size_t end = i, low = i, high = i, last = i;
    while (end < points.size() && std::isfinite(points[end].first) &&
           std::isfinite(points[end].second) && bucket_of(points[end].first) == bucket) {
      if (points[end].second < points[low].second) low = end;
      if (points[end].second > points[high].second) high = end;
      last = end;
      ++end;
    }
    std::size_t keep[] = {i, low, high, last};
    std::sort(std::begin(keep), std::end(keep));
    for (std::size_t k = 0; k < 4; ++k) {
      if (k == 0 || keep[k] != keep[k - 1]) out.push_back(points[keep[k]]);
    }
    i = end;
  }
  return out;
}

}  // namespace amlrun::plot
