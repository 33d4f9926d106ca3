#pragma once
// A line chart in the terminal: braille dots (2×4 per character cell) for
// the lines, a labelled y axis on the left, steps below, a legend. With
// colour each line has its own; without, each line's end is marked with its
// legend number.
#include <string>

#include "lib/plot/chart.hpp"

namespace amlrun::plot {

struct TerminalStyle {
  int width = 80;   // columns for the whole chart, labels included
  int height = 12;  // rows of the plot area
  bool color = false;
};

std::string render_terminal(const Panel& panel, const TerminalStyle& style);

}  // namespace amlrun::plot
