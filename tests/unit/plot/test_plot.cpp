#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <regex>

#include "lib/plot/axis.hpp"
#include "lib/plot/svg_chart.hpp"
#include "lib/plot/terminal_chart.hpp"
#include "lib/util/strings.hpp"

using namespace amlrun;

namespace {

std::size_t columns(const std::string& line) {
  // Display width without ANSI colour sequences; braille and box characters
  // are one column each.
  std::string plain = std::regex_replace(line, std::regex("\033\\[[0-9;]*m"), "");
  std::size_t width = 0;
  for (unsigned char c : plain) width += (c & 0xC0) != 0x80;
  return width;
}

plot::Panel loss_panel() {
  plot::Panel panel;
  panel.title = "loss";
  plot::Series a{"run_a", {}};
  plot::Series b{"run_b", {}};
  for (int step = 0; step < 200; ++step) {
    a.points.emplace_back(step, 1.0 / (step + 1));
    b.points.emplace_back(step, step == 50 ? std::nan("") : 0.5 / (step + 1));
  }
  panel.series = {a, b};
  return panel;
}

}  // namespace

TEST_CASE("axes get nice ticks that cover the data") {
  auto axis = plot::nice_axis(0.013, 0.97, 6);
  CHECK(axis.tick_step == Approx(0.2));
  CHECK(axis.low == 0);
  CHECK(axis.high == Approx(1.0));
  CHECK(axis.ticks.size() == 6);
  CHECK(plot::tick_label(axis.ticks[1], axis.tick_step) == "0.2");
  auto steps = plot::nice_axis(0, 9999, 7);
  CHECK(steps.tick_step == 2000);
  CHECK(plot::tick_label(4000, 2000) == "4000");
  auto flat = plot::nice_axis(5, 5, 5);  // one value: widened around it
  CHECK(flat.low < 5);
  CHECK(flat.high > 5);
  CHECK(plot::tick_label(2e-7, 1e-7) == "2e-07");
  auto negative = plot::nice_axis(-3.2, -0.1, 5);
  CHECK(negative.low <= -3.2);
  CHECK(negative.high >= -0.1);
}

TEST_CASE("the terminal chart fits its width and names every line") {
  for (int width : {40, 80, 132}) {
    plot::TerminalStyle style;
    style.width = width;
    for (bool color : {false, true}) {
      style.color = color;
      std::string chart = plot::render_terminal(loss_panel(), style);
      for (const auto& line : util::split(chart, '\n')) {
        INFO(line);
        CHECK(columns(line) <= static_cast<std::size_t>(width));
      }
      CHECK(chart.find("loss") != std::string::npos);
      CHECK(chart.find("run_a") != std::string::npos);
      CHECK(chart.find("run_b") != std::string::npos);
      CHECK(chart.find("step") != std::string::npos);
      CHECK(chart.find("\u2800") == std::string::npos);  // an empty cell is a space
      CHECK((chart.find("\033[") != std::string::npos) == color);
    }
  }
}

TEST_CASE("without colour, lines are told apart by numbered ends") {
  plot::TerminalStyle style;
  std::string chart = plot::render_terminal(loss_panel(), style);
  CHECK(chart.find("1 run_a") != std::string::npos);
  CHECK(chart.find("2 run_b") != std::string::npos);
  plot::Panel empty;
  empty.title = "nan_only";
  empty.series = {{"r", {{0, std::nan("")}}}};
  CHECK(plot::render_terminal(empty, style) == "nan_only\n  (no finite values to draw)\n");
}

TEST_CASE("the SVG has a panel per metric, a line group per series and a legend") {
  auto first = loss_panel();
  plot::Panel second;
  second.title = "acc<&>";
  second.series = {{"run \"a\"", {{0, 0.5}, {1, 0.7}}}};
  std::string svg = plot::render_svg({first, second});
  CHECK(svg.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg "));
  CHECK(svg.ends_with("</svg>\n"));
  auto count = [&](const std::string& needle) {
    std::size_t n = 0;
    for (std::size_t at = svg.find(needle); at != std::string::npos; at = svg.find(needle, at + 1))
      ++n;
    return n;
  };
  CHECK(count("<g class=\"panel\"") == 2);
  CHECK(count("<g class=\"series\"") == 3);
  CHECK(count("class=\"legend-label\"") == 3);
  CHECK(count("<polyline") == 4);  // run_b's NaN splits its line in two
  CHECK(svg.find("data-metric=\"acc&lt;&amp;&gt;\"") != std::string::npos);
  CHECK(svg.find("data-series=\"run &quot;a&quot;\"") != std::string::npos);
  CHECK(svg.find("acc<&>") == std::string::npos);
  CHECK(count("<") == count(">"));
}

TEST_CASE("a long series is reduced to what the pixels can show, extremes kept") {
  std::vector<std::pair<double, double>> points;
  for (int i = 0; i < 100000; ++i) points.emplace_back(i, i == 777 ? 50.0 : std::sin(i * 0.01));
  auto reduced = plot::reduce_for_width(points, 0, 100000, 500);
  CHECK(reduced.size() <= 2000);
  CHECK(std::find(reduced.begin(), reduced.end(), std::make_pair(777.0, 50.0)) != reduced.end());
  CHECK(reduced.front() == points.front());
  CHECK(reduced.back() == points.back());
  CHECK(plot::reduce_for_width({{0, 1}, {1, 2}}, 0, 1, 500).size() == 2);
}

namespace {

// Every number in the SVG's coordinate attributes, and whether all are finite.
bool svg_coordinates_finite(const std::string& svg) {
  std::regex attribute(R"(\s(?:x|y|x1|y1|x2|y2|cx|cy)="([^"]*)\")");
  std::regex points(R"(points="([^"]*)\")");
  auto finite = [](const std::string& text) {
    char* end = nullptr;
    double value = std::strtod(text.c_str(), &end);
    return end != text.c_str() && std::isfinite(value);
  };
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), attribute);
       it != std::sregex_iterator(); ++it) {
    if (!finite((*it)[1].str())) return false;
  }
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), points); it != std::sregex_iterator();
       ++it) {
    for (const auto& pair : util::split((*it)[1].str(), ' ')) {
      for (const auto& number : util::split(pair, ',')) {
        if (!finite(number)) return false;
      }
    }
  }
  return true;
}

}  // namespace

TEST_CASE("finite data always gives finite coordinates; a clipped range is said") {
  const double max = std::numeric_limits<double>::max();
  const double tiny = std::numeric_limits<double>::denorm_min();
  std::vector<std::vector<std::pair<double, double>>> cases = {
      {{0, 1e308}, {1, -1e308}},
      {{0, max}, {1, -max}, {2, 0}},
      {{0, max}, {1, max}},
      {{0, -max}},
      {{-max, 1}, {max, 2}},
      {{0, tiny}, {1, 2 * tiny}},
      {{0, 1e-310}, {1, 1e-310}},
      {{0, 1e300}, {1, 1e300 * (1 + 1e-15)}},
      {{9.2e18, 0.5}, {9.223372036854775807e18, 0.6}},
  };
  for (const auto& points : cases) {
    INFO(points.front().second);
    plot::Panel panel;
    panel.title = "loss";
    panel.series = {{"run_a", points}};
    plot::TerminalStyle style;
    style.width = 80;
    std::string text = plot::render_terminal(panel, style);
    CHECK(text.find("inf") == std::string::npos);
    CHECK(text.find("nan") == std::string::npos);
    std::string svg = plot::render_svg({panel});
    CHECK_FALSE(std::regex_search(svg, std::regex(R"([">,\s]-?(nan|inf)\b)")));
    CHECK(svg_coordinates_finite(svg));
    auto extent = plot::extent_of(panel);
    bool beyond = false;
    for (const auto& [x, y] : points) {
      beyond |= std::fabs(x) > plot::k_drawable_limit || std::fabs(y) > plot::k_drawable_limit;
    }
    CHECK(extent.clipped == beyond);
    std::string note = "values beyond ±1e+300 are drawn at the edge";
    CHECK((text.find("(" + note + ")\n") != std::string::npos) == beyond);
    CHECK((svg.find("class=\"clipped\"") != std::string::npos) == beyond);
  }
  auto axis = plot::nice_axis(-1e308, 1e308, 6);
  CHECK(std::isfinite(axis.low));
  CHECK(std::isfinite(axis.high));
  CHECK(std::isfinite(axis.high - axis.low));
  CHECK(axis.low == Approx(-1e300));
  CHECK(axis.high == Approx(1e300));
  CHECK(plot::tick_label(axis.low, axis.tick_step) == "-1e+300");
}
