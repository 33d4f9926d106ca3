#include "lib/plot/svg_chart.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <cmath>

#include "lib/plot/axis.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::plot {

namespace {

// The usual categorical palette (matplotlib's tab10): distinct in colour and
// lightness.
const char* const k_palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                 "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

constexpr int k_left = 72, k_right = 24, k_top = 44, k_bottom = 56, k_legend_row = 20;

int legend_height(const Panel& panel) {
  return static_cast<int>(panel.series.size()) * k_legend_row + 8;
}

void render_panel(std::string& out, const Panel& panel, int origin_x, int origin_y,
                  const SvgStyle& style) {
  int plot_w = style.panel_width - k_left - k_right;
  int plot_h = style.panel_height - k_top - k_bottom;
  out += fmt::format("<g class=\"panel\" data-metric=\"{}\" transform=\"translate({},{})\">\n",
                     xml_escape(panel.title), origin_x, origin_y);
  out += fmt::format(
      "<text class=\"title\" x=\"{}\" y=\"26\" text-anchor=\"middle\" font-size=\"15\" "
      "font-weight=\"bold\">{}</text>\n",
      k_left + plot_w / 2, xml_escape(panel.title));
  Extent extent = extent_of(panel);
  if (extent.empty) {
    out += fmt::format(
        "<text class=\"empty\" x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#666\">no finite "
        "values to draw</text>\n</g>\n",
        k_left + plot_w / 2, k_top + plot_h / 2);
    return;
  }
  Axis x_axis = nice_axis(extent.x_min, extent.x_max, 7);
  Axis y_axis = nice_axis(extent.y_min, extent.y_max, 6);
  if (extent.clipped) {
    out += fmt::format(
        "<text class=\"clipped\" x=\"{}\" y=\"40\" text-anchor=\"middle\" font-size=\"11\" "
        "fill=\"#a00\">{}</text>\n",
        k_left + plot_w / 2, xml_escape(clipped_note()));
  }
  auto to_x = [&](double x) {
    return k_left + (x - x_axis.low) / (x_axis.high - x_axis.low) * plot_w;
  };
  auto to_y = [&](double y) {
    return k_top + (y_axis.high - y) / (y_axis.high - y_axis.low) * plot_h;
  };
  // Grid and ticks first, so the lines are drawn over them.
  for (double tick : y_axis.ticks) {
    double y = to_y(tick);
    out += fmt::format(
        "<line class=\"grid\" x1=\"{}\" y1=\"{:.2f}\" x2=\"{}\" y2=\"{:.2f}\" "
        "stroke=\"#e6e6e6\"/>\n",
        k_left, y, k_left + plot_w, y);
    out += fmt::format(
        "<text class=\"tick y-tick\" x=\"{}\" y=\"{:.2f}\" text-anchor=\"end\" "
        "dominant-baseline=\"middle\">{}</text>\n",
        k_left - 6, y, xml_escape(tick_label(tick, y_axis.tick_step)));
  }
  for (double tick : x_axis.ticks) {
    double x = to_x(tick);
    out += fmt::format(
        "<line class=\"grid\" x1=\"{:.2f}\" y1=\"{}\" x2=\"{:.2f}\" y2=\"{}\" "
        "stroke=\"#e6e6e6\"/>\n",
        x, k_top, x, k_top + plot_h);
    out += fmt::format(
        "<text class=\"tick x-tick\" x=\"{:.2f}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", x,
        k_top + plot_h + 18, xml_escape(tick_label(tick, x_axis.tick_step)));
  }
  out += fmt::format("<path class=\"axis\" d=\"M{} {}V{}H{}\" fill=\"none\" stroke=\"#333\"/>\n",
                     k_left, k_top, k_top + plot_h, k_left + plot_w);
  out += fmt::format(
      "<text class=\"axis-label x-label\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
      k_left + plot_w / 2, k_top + plot_h + 40, xml_escape(panel.x_label));
  out += fmt::format(
      "<text class=\"axis-label y-label\" transform=\"translate(16,{}) rotate(-90)\" "
      "text-anchor=\"middle\">{}</text>\n",
      k_top + plot_h / 2, xml_escape(panel.title));
  for (std::size_t s = 0; s < panel.series.size(); ++s) {
    const auto& series = panel.series[s];
    const char* color = k_palette[s % std::size(k_palette)];
    out += fmt::format("<g class=\"series\" data-series=\"{}\" stroke=\"{}\" fill=\"{}\">\n",
                       xml_escape(series.label), color, color);
    // A NaN or Infinity breaks the line into separate polylines.
    std::vector<std::pair<double, double>> run;
    auto emit = [&]() {
      if (run.size() == 1) {
        out += fmt::format("<circle cx=\"{:.2f}\" cy=\"{:.2f}\" r=\"2.5\" stroke=\"none\"/>\n",
                           run[0].first, run[0].second);
      } else if (run.size() > 1) {
        out += "<polyline fill=\"none\" stroke-width=\"1.8\" stroke-linejoin=\"round\" points=\"";
        for (std::size_t i = 0; i < run.size(); ++i) {
          out += fmt::format("{}{:.2f},{:.2f}", i ? " " : "", run[i].first, run[i].second);
        }
        out += "\"/>\n";
      }
      run.clear();
    };
    for (const auto& [x, y] :
         reduce_for_width(drawable_points(series.points), x_axis.low, x_axis.high, plot_w)) {
      if (!std::isfinite(x) || !std::isfinite(y)) {
        emit();
        continue;
      }
      run.emplace_back(to_x(x), to_y(y));
    }
    emit();
    out += "</g>\n";
  }
  int legend_y = style.panel_height;
  out += "<g class=\"legend\">\n";
  for (std::size_t s = 0; s < panel.series.size(); ++s) {
    int y = legend_y + static_cast<int>(s) * k_legend_row;
    const char* color = k_palette[s % std::size(k_palette)];
    out += fmt::format(
        "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"3\"/>\n",
        k_left, y, k_left + 24, y, color);
    out += fmt::format(
        "<text class=\"legend-label\" x=\"{}\" y=\"{}\" dominant-baseline=\"middle\">{}</text>\n",
        k_left + 32, y, xml_escape(panel.series[s].label));
  }
  out += "</g>\n</g>\n";
}

}  // namespace

std::string xml_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        // XML 1.0 allows no control characters but tab, newline and return.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r') {
          out += '?';
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::string render_svg(const std::vector<Panel>& panels, const SvgStyle& style) {
  int per_row = std::max(1, std::min<int>(style.panels_per_row, static_cast<int>(panels.size())));
  int rows = (static_cast<int>(panels.size()) + per_row - 1) / per_row;
  // Each row is as tall as its panel with the longest legend.
  std::vector<int> row_heights(rows, style.panel_height);
  for (std::size_t i = 0; i < panels.size(); ++i) {
    int row = static_cast<int>(i) / per_row;
    row_heights[row] = std::max(row_heights[row], style.panel_height + legend_height(panels[i]));
  }
  int width = per_row * style.panel_width;
  int height = 0;
  for (int h : row_heights) height += h;
  std::vector<std::string> titles;
  titles.reserve(panels.size());
  for (const auto& panel : panels) titles.push_back(panel.title);
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"{}\" height=\"{}\" "
      "viewBox=\"0 0 {} {}\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n",
      width, height, width, height);
  out += fmt::format("<title>{}</title>\n", xml_escape(util::join(titles, ", ")));
  out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  int y = 0;
  for (int row = 0; row < rows; ++row) {
    for (int column = 0; column < per_row; ++column) {
      std::size_t i = static_cast<std::size_t>(row) * per_row + column;
      if (i >= panels.size()) break;
      render_panel(out, panels[i], column * style.panel_width, y, style);
    }
    y += row_heights[row];
  }
  out += "</svg>\n";
  return out;
}

}  // namespace amlrun::plot
