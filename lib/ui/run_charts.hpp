#pragma once
// Charts of runs, described for lib/plot: metric curves (one panel per
// metric, one line per run and rank) and a sweep's parallel coordinates.
// `amlrun metrics --plot` and the web view draw the same descriptions.
#include <string>
#include <vector>

#include "lib/plot/chart.hpp"
#include "lib/plot/parallel_chart.hpp"
#include "lib/store/metrics.hpp"
#include "lib/store/run_store.hpp"

namespace amlrun::ui {

struct RunPoints {
  std::string label;  // the run's id (or what the legend should say)
  std::vector<store::MetricPoint> points;
};

// One panel per name; one line per run, and per rank when several ranks
// of a run logged that metric ("ID (rank 1)").
std::vector<plot::Panel> metric_panels(const std::vector<std::string>& names,
                                       const std::vector<RunPoints>& runs);

// A sweep's trials as lines through their parameters and objective.
plot::ParallelChart sweep_parallel_chart(const store::RunStore& store,
                                         const store::RunRecord& sweep);

}  // namespace amlrun::ui
