#include <catch2/catch.hpp>

#include "lib/plot/parallel_chart.hpp"

using namespace amlrun::plot;

namespace {

ParallelChart chart() {
  ParallelChart c;
  c.title = "sweep: parameters and loss";
  c.axes = {"lr", "optimizer"};
  c.objective_name = "loss";
  c.lines = {{"t0", {{"0.1", 0.1}, {"sgd", std::nullopt}}, 0.5},
             {"t1", {{"0.3", 0.3}, {"adam", std::nullopt}}, 1.5},
             {"t2", {{"0.2", 0.2}, {"<b>&", std::nullopt}}, std::nullopt}};
  return c;
}

std::string attribute_of(const std::string& svg, const std::string& trial,
                         const std::string& name) {
  auto at = svg.find("data-trial=\"" + trial + "\"");
  REQUIRE(at != std::string::npos);
  auto start = svg.find(name + "=\"", at) + name.size() + 2;
  return svg.substr(start, svg.find('"', start) - start);
}

}  // namespace

TEST_CASE("a parallel-coordinates chart draws each trial through its values") {
  const std::string svg = render_parallel_svg(chart(), 900, 420);
  // Axes: the parameters, then the objective.
  CHECK(svg.find("data-axis=\"lr\"") < svg.find("data-axis=\"optimizer\""));
  CHECK(svg.find("data-axis=\"optimizer\"") < svg.find("data-axis=\"loss\""));
  // The best trial is blue, the worst red, one without an objective grey
  // and without a point on the objective axis.
  CHECK(attribute_of(svg, "t0", "stroke") == "#1f77b4");
  CHECK(attribute_of(svg, "t1", "stroke") == "#d62728");
  CHECK(attribute_of(svg, "t2", "stroke") == "#aaaaaa");
  auto points = [](const std::string& text) { return std::count(text.begin(), text.end(), ','); };
  CHECK(points(attribute_of(svg, "t0", "points")) == 3);
  CHECK(points(attribute_of(svg, "t2", "points")) == 2);
  // Categorical values are text, escaped.
  CHECK(svg.find(">&lt;b&gt;&amp;</text>") != std::string::npos);
  CHECK(svg.find("<b>&") == std::string::npos);
}

TEST_CASE("maximising colours the highest objective as the best") {
  auto c = chart();
  c.lower_is_better = false;
  const std::string svg = render_parallel_svg(c);
  CHECK(attribute_of(svg, "t1", "stroke") == "#1f77b4");
  CHECK(attribute_of(svg, "t0", "stroke") == "#d62728");
}
