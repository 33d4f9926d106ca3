#pragma once
// An SVG line chart: one panel per metric (side by side, two to a row), each
// with a title, axes with tick labels and grid lines, axis labels, one line
// per series and a legend. Plain SVG 1.1 that browsers and editors open;
// elements carry classes (panel, series, legend, ...) and data-* attributes
// naming metric and series, so tools and tests can read the chart back.
#include <string>
#include <vector>

#include "lib/plot/chart.hpp"

namespace amlrun::plot {

struct SvgStyle {
  int panel_width = 640;
  int panel_height = 400;  // without the legend, which adds a row per series
  int panels_per_row = 2;
};

std::string render_svg(const std::vector<Panel>& panels, const SvgStyle& style = {});

// Text made safe for XML content and attribute values.
std::string xml_escape(const std::string& text);

}  // namespace amlrun::plot
