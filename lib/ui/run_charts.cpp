#include "lib/ui/run_charts.hpp"

#include <fmt/format.h>

#include <map>

#include "lib/compute/sweep/sweep_summary.hpp"

namespace amlrun::ui {

std::vector<plot::Panel> metric_panels(const std::vector<std::string>& names,
                                       const std::vector<RunPoints>& runs) {
  std::vector<plot::Panel> panels;
  for (const auto& name : names) {
    plot::Panel panel;
    panel.title = name;
    for (const auto& run : runs) {
      std::map<int, std::vector<std::pair<double, double>>> by_rank;
      for (const auto& point : run.points) {
        if (point.name == name) {
          by_rank[point.rank].emplace_back(static_cast<double>(point.step), point.value);
        }
      }
      for (auto& [rank, points] : by_rank) {
        std::string label =
            by_rank.size() > 1 ? fmt::format("{} (rank {})", run.label, rank) : run.label;
        panel.series.push_back({label, std::move(points)});
      }
    }
    panels.push_back(std::move(panel));
  }
  return panels;
}

plot::ParallelChart sweep_parallel_chart(const store::RunStore& store,
                                         const store::RunRecord& sweep) {
  auto settings = compute::sweep_settings_of(store, sweep);
  auto summary = compute::summarize_sweep(store, sweep);
  plot::ParallelChart chart;
  chart.title = fmt::format("{}: parameters and {}", sweep.id, settings.primary_metric);
  chart.axes = sweep::parameter_names(settings.search_space);
  chart.objective_name = settings.primary_metric;
  chart.lower_is_better = settings.goal == sweep::Goal::minimize;
  for (const auto& trial : summary.trials) {
    plot::ParallelLine line;
    line.label = trial.id;
    line.objective = trial.objective;
    for (const auto& name : chart.axes) {
      plot::ParallelValue value;
      for (const auto& [param, given] : trial.params) {
        if (param == name) value = {given.str(), given.number()};
      }
      line.values.push_back(value);
    }
    chart.lines.push_back(std::move(line));
  }
  return chart;
}

}  // namespace amlrun::ui
