#include "lib/plot/parallel_chart.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "lib/plot/axis.hpp"
#include "lib/plot/svg_chart.hpp"

namespace amlrun::plot {

namespace {

constexpr int k_left = 70;
constexpr int k_right = 90;
constexpr int k_top = 56;
constexpr int k_bottom = 40;

// Where a value sits on its axis, from 0 (bottom) to 1 (top); nullopt when
// the line has no value there.
struct AxisScale {
  bool categorical = false;
  std::vector<std::string> categories;
  Axis axis;

  std::optional<double> position(const ParallelValue& value) const {
    if (categorical) {
      if (value.text.empty() && !value.number) return std::nullopt;
      auto it = std::find(categories.begin(), categories.end(), value.text);
      if (it == categories.end()) return std::nullopt;
      if (categories.size() == 1) return 0.5;
      return static_cast<double>(it - categories.begin()) /
             static_cast<double>(categories.size() - 1);
    }
    if (!value.number || !std::isfinite(*value.number)) return std::nullopt;
    return (clip_to_drawable(*value.number) - axis.low) / (axis.high - axis.low);
  }
};

AxisScale scale_for(const std::vector<const ParallelValue*>& values) {
  AxisScale scale;
  double low = INFINITY;
  double high = -INFINITY;
  for (const auto* value : values) {
    if (value->text.empty() && !value->number) continue;
    if (!value->number) scale.categorical = true;
    if (value->number && std::isfinite(*value->number)) {
      low = std::min(low, *value->number);
      high = std::max(high, *value->number);
    }
  }
  if (scale.categorical) {
    for (const auto* value : values) {
      if (value->text.empty() && !value->number) continue;
      if (std::find(scale.categories.begin(), scale.categories.end(), value->text) ==
          scale.categories.end()) {
        scale.categories.push_back(value->text);
      }
    }
  } else {
    scale.axis = std::isfinite(low) ? nice_axis(low, high, 5) : nice_axis(0, 1, 5);
  }
  return scale;
}

// Blue for the best objective, red for the worst, through purple.
std::string colour(double goodness) {
  const int red = static_cast<int>(std::lround(31 + (214 - 31) * (1 - goodness)));
  const int green = static_cast<int>(std::lround(119 + (39 - 119) * (1 - goodness)));
  const int blue = static_cast<int>(std::lround(180 + (40 - 180) * (1 - goodness)));
  return fmt::format("#{:02x}{:02x}{:02x}", red, green, blue);
}

}  // namespace

std::string render_parallel_svg(const ParallelChart& chart, int width, int height) {
  const std::size_t axis_count = chart.axes.size() + 1;
  std::vector<AxisScale> scales;
  scales.reserve(axis_count);
  for (std::size_t a = 0; a < chart.axes.size(); ++a) {
    std::vector<const ParallelValue*> column;
    for (const auto& line : chart.lines) {
      if (a < line.values.size()) column.push_back(&line.values[a]);
    }
    scales.push_back(scale_for(column));
  }
  std::vector<ParallelValue> objectives;
  objectives.reserve(chart.lines.size());
  for (const auto& line : chart.lines) {
    objectives.push_back(
        {line.objective ? fmt::format("{}", *line.objective) : "", line.objective});
  }
  std::vector<const ParallelValue*> objective_column;
  objective_column.reserve(objectives.size());
  for (const auto& value : objectives) objective_column.push_back(&value);
  scales.push_back(scale_for(objective_column));
  double best = INFINITY;
  double worst = -INFINITY;
  for (const auto& line : chart.lines) {
    if (!line.objective || !std::isfinite(*line.objective)) continue;
    best = std::min(best, *line.objective);
    worst = std::max(worst, *line.objective);
  }
  if (!chart.lower_is_better) std::swap(best, worst);

  const double plot_w = width - k_left - k_right;
  const double plot_h = height - k_top - k_bottom;
  auto x_of = [&](std::size_t a) {
    return axis_count == 1
               ? k_left + plot_w / 2
               : k_left + plot_w * static_cast<double>(a) / static_cast<double>(axis_count - 1);
  };
  auto y_of = [&](double position) { return k_top + plot_h * (1 - position); };

  std::string out = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" "
      "font-family=\"sans-serif\" font-size=\"11\">\n",
      width, height, width, height);
  out += fmt::format("<title>{}</title>\n", xml_escape(chart.title));
  out += fmt::format("<rect width=\"{}\" height=\"{}\" fill=\"white\"/>\n", width, height);
  out += fmt::format("<text x=\"{}\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">{}</text>\n",
                     width / 2, xml_escape(chart.title));
  // The lines first, so the axes and their labels are drawn over them.
  for (std::size_t l = 0; l < chart.lines.size(); ++l) {
    const auto& line = chart.lines[l];
    std::string stroke = "#aaaaaa";
    if (line.objective && std::isfinite(*line.objective)) {
      const double span = worst - best;
      stroke = colour(span == 0 ? 1.0 : 1.0 - (*line.objective - best) / span);
    }
    std::string points;
    for (std::size_t a = 0; a < axis_count; ++a) {
      const ParallelValue& value = a < chart.axes.size()
                                       ? (a < line.values.size() ? line.values[a] : ParallelValue{})
                                       : objectives[l];
      if (auto position = scales[a].position(value)) {
        points += fmt::format("{:.1f},{:.1f} ", x_of(a), y_of(*position));
      }
    }
    out += fmt::format(
        "<polyline class=\"trial\" data-trial=\"{}\" fill=\"none\" stroke=\"{}\" "
        "stroke-width=\"1.5\" stroke-opacity=\"0.8\" points=\"{}\"/>\n",
        xml_escape(line.label), stroke, points);
  }
  for (std::size_t a = 0; a < axis_count; ++a) {
    const std::string name = a < chart.axes.size() ? chart.axes[a] : chart.objective_name;
    const double x = x_of(a);
    out += fmt::format(
        "<g class=\"axis\" data-axis=\"{}\"><line x1=\"{:.1f}\" y1=\"{}\" x2=\"{:.1f}\" y2=\"{}\" "
        "stroke=\"#333\"/>\n",
        xml_escape(name), x, k_top, x, k_top + static_cast<int>(plot_h));
    out += fmt::format(
        "<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\" font-weight=\"bold\">{}</text>\n", x,
        k_top - 14, xml_escape(name));
    const AxisScale& scale = scales[a];
    auto tick = [&](double position, const std::string& label) {
      const double y = y_of(position);
      out += fmt::format(
          "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#333\"/>"
          "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n",
          x - 4, y, x, y, x - 6, y + 4, xml_escape(label));
    };
    if (scale.categorical) {
      for (std::size_t c = 0; c < scale.categories.size(); ++c) {
        tick(scale.categories.size() == 1
                 ? 0.5
                 : static_cast<double>(c) / static_cast<double>(scale.categories.size() - 1),
             scale.categories[c]);
      }
    } else {
      for (double value : scale.axis.ticks) {
        tick((value - scale.axis.low) / (scale.axis.high - scale.axis.low),
             tick_label(value, scale.axis.tick_step));
      }
    }
    out += "</g>\n";
  }
  out += "</svg>\n";
  return out;
}

}  // namespace amlrun::plot
