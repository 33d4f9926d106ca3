#include <catch2/catch.hpp>
#include <cmath>
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
