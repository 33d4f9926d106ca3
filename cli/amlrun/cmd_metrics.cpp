// metrics: a run's metrics as a table, JSON or CSV, or drawn as line charts
// in the terminal or an SVG file (several runs compared side by side).
#include <fmt/format.h>
#include <cstdio>
#include <map>
#include <set>

#include "cli/amlrun/commands.hpp"
#include "cli/amlrun/metrics_view.hpp"
#include "cli/amlrun/option_checks.hpp"
#include "cli/amlrun/terminal.hpp"
#include "lib/plot/parallel_chart.hpp"
#include "lib/plot/svg_chart.hpp"
#include "lib/plot/terminal_chart.hpp"
#include "lib/store/metrics.hpp"
#include "lib/store/run_store.hpp"
#include "lib/ui/run_charts.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::cli {

namespace {

enum class MetricsFormat { table, json, csv };

struct RunMetrics {
  std::string id;
  std::vector<std::string> names;  // every metric the run has
  std::vector<store::MetricPoint> points;
  store::IngestReport report;
};

std::vector<std::string> names_in(const std::vector<RunMetrics>& runs) {
  std::set<std::string> names;
  for (const auto& run : runs) names.insert(run.names.begin(), run.names.end());
  return {names.begin(), names.end()};
}

// Every name asked for must exist in at least one of the runs.
void check_names(const std::vector<std::string>& wanted, const std::vector<RunMetrics>& runs) {
  auto known = names_in(runs);
  for (const auto& name : wanted) {
    if (std::find(known.begin(), known.end(), name) != known.end()) continue;
    std::vector<std::string> ids;
    for (const auto& run : runs) ids.push_back(run.id);
    throw util::InputError(
        fmt::format("no metric '{}' in run{} {}{}; {}", name, ids.size() == 1 ? "" : "s",
                    util::join(ids, ", "), util::did_you_mean_suffix(name, known),
                    known.empty() ? std::string("it has no metrics")
                                  : fmt::format("the metrics are {}", util::join(known, ", "))));
  }
}

// One panel per metric name; one line per run (and rank, when several wrote it).
std::vector<plot::Panel> panels_for(const std::vector<std::string>& names,
                                    const std::vector<RunMetrics>& runs) {
  std::vector<ui::RunPoints> points;
  for (const auto& run : runs) points.push_back({run.id, run.points});
  return ui::metric_panels(names, points);
}

void print_points(const std::vector<RunMetrics>& runs, MetricsFormat format) {
  bool several_runs = runs.size() > 1;
  bool several_ranks = false;
  for (const auto& run : runs) {
    for (const auto& point : run.points) several_ranks |= point.rank != 0;
  }
  if (format == MetricsFormat::json) {
    nlohmann::ordered_json out = {{"runs", nlohmann::ordered_json::array()}};
    for (const auto& run : runs) {
      nlohmann::ordered_json metrics = nlohmann::ordered_json::object();
      for (const auto& point : run.points) {
        metrics[point.name].push_back({{"step", point.step},
                                       {"value", metric_value_json(point.value)},
                                       {"rank", point.rank}});
      }
      out["runs"].push_back(
          {{"id", run.id}, {"metrics", metrics}, {"skipped", ingest_report_json(run.report)}});
    }
    std::printf("%s\n", out.dump(2).c_str());
    return;
  }
  if (format == MetricsFormat::csv) {
    // Names and ids are validated names: no commas or quotes to escape.
    std::string out = "run,name,rank,step,value\n";
    for (const auto& run : runs) {
      for (const auto& point : run.points) {
        out += fmt::format("{},{},{},{},{}\n", run.id, point.name, point.rank, point.step,
                           store::format_metric_value(point.value));
      }
    }
    std::fputs(out.c_str(), stdout);
    return;
  }
  std::vector<std::string> headers;
  if (several_runs) headers.push_back("RUN");
  headers.insert(headers.end(), {"NAME", "STEP", "VALUE"});
  if (several_ranks) headers.push_back("RANK");
  Table table(headers);
  std::size_t step_column = several_runs ? 2 : 1;
  table.right_align(step_column);
  table.right_align(step_column + 1);
  if (several_ranks) table.right_align(step_column + 2);
  for (const auto& run : runs) {
    for (const auto& point : run.points) {
      std::vector<std::string> row;
      if (several_runs) row.push_back(run.id);
      row.insert(row.end(),
                 {point.name, std::to_string(point.step), store::format_metric_value(point.value)});
      if (several_ranks) row.push_back(std::to_string(point.rank));
      table.add(std::move(row));
    }
  }
  if (!table.empty()) std::fputs(table.render(SIZE_MAX).c_str(), stdout);
}

}  // namespace

void add_metrics(CLI::App& app, GlobalOptions& global, Handler& handler) {
  struct Options {
    std::vector<std::string> ids;
    std::string name;
    MetricsFormat output = MetricsFormat::table;
    std::string plot;
    std::string plot_file;
  };
  auto options = std::make_shared<Options>();
  app.add_option("ID", options->ids, "Run ids (or unique prefixes); several are compared")
      ->required();
  app.add_option("--name", options->name, "Only this metric")->check(not_blank());
  const std::map<std::string, MetricsFormat> formats = {
      {"table", MetricsFormat::table}, {"json", MetricsFormat::json}, {"csv", MetricsFormat::csv}};
  add_choice_option(app, "--output", options->output, formats, "table (default), json or csv");
  app.add_option("--plot", options->plot,
                 "Draw these metrics (NAME[,NAME]) as line charts in the terminal")
      ->check(CLI::Validator(
          [](std::string& value) -> std::string {
            for (const auto& name : util::split(value, ',')) {
              if (!util::trim(name).empty()) return "";
            }
            return "names no metric; give NAME[,NAME] (e.g. --plot loss,accuracy), or leave "
                   "--plot out to print the table";
          },
          ""));
  app.add_option("--plot-file", options->plot_file,
                 "Write the charts to an SVG file instead (all metrics unless --plot names some)")
      ->check(not_blank());
  handler = [options, &global]() {
    auto workspace = workspace::open_workspace(workspace_options(global, false));
    store::RunStore store(workspace);
    // A sweep has no metrics of its own: its trials stand for it, so a
    // sweep's id overlays every trial.
    std::vector<std::string> ids;
    std::vector<store::RunRecord> sweeps;
    for (const auto& given : options->ids) {
      std::string id = store.resolve(given);
      if (store.load(id).kind != store::RunKind::sweep) {
        ids.push_back(id);
        continue;
      }
      sweeps.push_back(store.load(id));
      store::RunFilter trials;
      trials.parent = id;
      trials.limit = 0;
      // In the order started: trial ids end in _<k>.
      std::vector<std::pair<unsigned long long, std::string>> ordered;
      for (const auto& row : store.list(trials)) {
        ordered.emplace_back(std::stoull("0" + row.id.substr(row.id.rfind('_') + 1)), row.id);
      }
      std::sort(ordered.begin(), ordered.end());
      for (const auto& [k, trial] : ordered) ids.push_back(trial);
    }
    std::vector<RunMetrics> runs;
    for (const auto& id : ids) {
      bool repeated = false;
      for (const auto& run : runs) repeated |= run.id == id;
      if (repeated) continue;
      RunMetrics run{
          id, {}, store::metric_points(store, id, options->name), store::ingest_report(store, id)};
      for (const auto& summary : store::metric_summaries(store, id)) {
        run.names.push_back(summary.name);
      }
      runs.push_back(std::move(run));
    }
    bool plotting = !options->plot.empty() || !options->plot_file.empty();
    if (!options->name.empty() && !plotting) check_names({options->name}, runs);
    for (const auto& run : runs) {
      if (run.report.skipped() > 0) {
        std::fprintf(stderr, "amlrun: warning: run %s: metrics skipped: %s\n", run.id.c_str(),
                     util::escape_control(skipped_text(run.report)).c_str());
      }
    }
    if (!plotting) {
      bool any = false;
      for (const auto& run : runs) any |= !run.points.empty();
      if (!any && options->output == MetricsFormat::table) {
        std::fprintf(
            stderr, "amlrun: no metrics recorded%s\n",
            options->name.empty() ? "" : fmt::format(" named '{}'", options->name).c_str());
        return ExitCode::ok;
      }
      print_points(runs, options->output);
      return ExitCode::ok;
    }
    if (!options->name.empty()) {
      throw util::InputError(
          "--name selects rows of the table; with --plot, name the metrics there");
    }
    std::vector<std::string> names;
    for (const auto& name : util::split(options->plot, ',')) {
      std::string trimmed(util::trim(name));
      if (!trimmed.empty() && std::find(names.begin(), names.end(), trimmed) == names.end()) {
        names.push_back(trimmed);
      }
    }
    if (names.empty()) names = names_in(runs);
    if (names.empty()) {
      throw util::InputError(fmt::format("nothing to plot: run{} {} recorded no metrics",
                                         runs.size() == 1 ? "" : "s", [&] {
                                           std::vector<std::string> ids;
                                           for (const auto& run : runs) ids.push_back(run.id);
                                           return util::join(ids, ", ");
                                         }()));
    }
    check_names(names, runs);
    auto panels = panels_for(names, runs);
    if (!options->plot_file.empty()) {
      std::filesystem::path file = options->plot_file;
      std::filesystem::path parent = file.has_parent_path() ? file.parent_path() : ".";
      if (!std::filesystem::is_directory(parent)) {
        throw util::InputError(fmt::format("--plot-file {}: the directory {} does not exist",
                                           file.string(), parent.string()));
      }
      if (std::filesystem::is_directory(file)) {
        throw util::InputError(
            fmt::format("--plot-file {} is a directory; give a file name", file.string()));
      }
      util::write_file_atomic(file, plot::render_svg(panels));
      std::size_t lines = 0;
      for (const auto& panel : panels) lines += panel.series.size();
      std::fprintf(stderr, "amlrun: wrote %s (%zu chart%s, %zu line%s)\n", file.c_str(),
                   panels.size(), panels.size() == 1 ? "" : "s", lines, lines == 1 ? "" : "s");
      // A sweep's parameters against its objective, beside the curves.
      for (const auto& sweep : sweeps) {
        auto parallel = file;
        parallel.replace_filename(
            fmt::format("{}-{}{}", file.stem().string(),
                        sweeps.size() == 1 ? "parallel" : sweep.id + "-parallel",
                        file.has_extension() ? file.extension().string() : ".svg"));
        auto chart = ui::sweep_parallel_chart(store, sweep);
        util::write_file_atomic(parallel, plot::render_parallel_svg(chart));
        std::fprintf(stderr, "amlrun: wrote %s (parallel coordinates of %zu trial%s)\n",
                     parallel.c_str(), chart.lines.size(), chart.lines.size() == 1 ? "" : "s");
      }
      return ExitCode::ok;
    }
    plot::TerminalStyle style;
    style.width = terminal_width(1);
    style.color = use_color(1);
    std::string out;
    for (std::size_t i = 0; i < panels.size(); ++i) {
      if (i) out += "\n";
      out += plot::render_terminal(panels[i], style);
    }
    std::fputs(out.c_str(), stdout);
    return ExitCode::ok;
  };
}

}  // namespace amlrun::cli
