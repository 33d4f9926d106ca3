#include "cli/amlrun/follow.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cstdio>
#include <map>

#include "cli/amlrun/metrics_view.hpp"
#include "cli/amlrun/terminal.hpp"
#include "lib/compute/compute_target.hpp"
#include "lib/compute/sweep/sweep_state.hpp"
#include "lib/compute/sweep/sweep_summary.hpp"
#include "lib/store/run_layout.hpp"
#include "lib/stream/log_stream.hpp"
#include "lib/stream/log_tail.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/strings.hpp"
#include "lib/util/time.hpp"
#include "lib/util/timing.hpp"

namespace amlrun::cli {

namespace {

int g_interrupt_pipe[2] = {-1, -1};

void on_interrupt(int) {
  char byte = 1;
  ssize_t ignored = ::write(g_interrupt_pipe[1], &byte, 1);
  (void)ignored;
}

}  // namespace

ExitCode exit_code_for_record(const store::RunRecord& record) {
  switch (record.state) {
    case store::RunState::completed:
      return ExitCode::ok;
    case store::RunState::canceled:
      return ExitCode::run_canceled;
    default:
      // A run that failed for the cluster's reasons (preemption, a failed
      // node) is not a failure of the code: CI may retry it.
      return record.infrastructure_failure ? ExitCode::infrastructure : ExitCode::run_failed;
  }
}

nlohmann::ordered_json run_json(const store::RunStore& store, const store::RunRecord& record) {
  auto j = store::to_json(record);
  auto dir = store.run_dir(record.id);
  j["paths"] = {{"run_dir", dir.string()},
                {"outputs", (dir / "artifacts" / "outputs").string()},
                {"logs", (dir / "artifacts" / "logs").string()}};
  j["duration_seconds"] = record.duration_seconds();
  j["metrics"] = metrics_summary_json(store::metric_summaries(store, record.id));
  j["metrics_skipped"] = ingest_report_json(store::ingest_report(store, record.id));
  store::RunFilter children;
  children.parent = record.id;
  children.limit = 0;
  auto child_runs = nlohmann::ordered_json::array();
  for (const auto& row : store.list(children)) {
    child_runs.push_back(
        {{"id", row.id}, {"display_name", row.display_name}, {"state", row.state}});
  }
  j["child_runs"] = child_runs;
  if (record.kind == store::RunKind::sweep) {
    try {
      auto settings = compute::sweep_settings_of(store, record);
      auto seed = compute::sweep_state_from_json(record.target).seed;
      j["sweep"] = compute::to_json(compute::summarize_sweep(store, record), settings, seed);
    } catch (const util::Error& error) {
      j["sweep"] = {{"error", error.what()}};
    }
  }
  return j;
}

// Renderer sources of a sweep's trials: above any rank number.
constexpr int k_trial_log_base = 1'000'000;

ExitCode follow_run(store::RunStore& store, const std::string& run_id, const FollowOptions& options,
                    std::unique_ptr<compute::ComputeTarget> given) {
  if (::pipe2(g_interrupt_pipe, O_CLOEXEC | O_NONBLOCK) != 0) g_interrupt_pipe[0] = -1;
  struct sigaction action {};
  action.sa_handler = on_interrupt;
  ::sigaction(SIGINT, &action, nullptr);
  ::sigaction(SIGTERM, &action, nullptr);

  bool text = options.output == OutputFormat::text;
  auto initial = store.load(run_id);
  // A sweep is followed through its controller's target, whatever took it.
  auto target = given && initial.kind == store::RunKind::job
                    ? std::move(given)
                    : compute::target_of(store.workspace(), initial);
  stream::StreamOptions stream_options;
  target->start_following(store, initial);
  stream_options.log_roots = target->log_roots(store, initial);
  stream_options.state_dirs = target->state_directories(store, initial);
  stream_options.all_ranks = options.all_ranks;
  // In json mode stdout carries the result alone; the logs go to stderr.
  stream_options.output_fd = text ? 1 : 2;
  int log_fd = stream_options.output_fd;
  const bool all_trials = options.all_trials && initial.kind == store::RunKind::sweep;
  auto renderer = std::make_shared<stream::LogRenderer>(
      stream::RenderOptions{is_terminal(log_fd), options.all_ranks || all_trials,
                            static_cast<std::size_t>(terminal_width(log_fd))});
  stream_options.renderer = renderer;
  // A sweep's trials as they start: rank 0's log of each (the trial's own
  // target says where it is), after the sweep's own lines.
  std::map<std::string, stream::ExtraLog> trial_logs;
  if (all_trials) {
    renderer->set_prefix(0, "[sweep] ");
    stream_options.extra_logs = [&]() {
      store::RunFilter trials;
      trials.parent = run_id;
      trials.limit = 0;
      std::vector<stream::ExtraLog> out;
      for (const auto& row : store.list(trials)) {
        auto known = trial_logs.find(row.id);
        if (known == trial_logs.end()) {
          const std::uint64_t k = std::stoull("0" + row.id.substr(row.id.rfind('_') + 1));
          auto record = store.load(row.id);
          stream::ExtraLog log;
          log.source = k_trial_log_base + static_cast<int>(k);
          log.roots = compute::target_of(store.workspace(), record)->log_roots(store, record);
          renderer->set_prefix(log.source, fmt::format("[trial {}] ", k));
          known = trial_logs.emplace(row.id, log).first;
        }
        out.push_back(known->second);
      }
      return out;
    };
  }
  // amlrun's own lines go to stderr; where that is the terminal the log's
  // live line is drawn on, the live line steps aside and comes back below.
  bool shared_terminal = is_terminal(log_fd) && is_terminal(2);
  // While the environment is built: a status line redrawn in place on a
  // terminal, else the build log's lines, marked as amlrun's.
  bool status_terminal = is_terminal(2);
  bool status_shown = false;
  auto clear_status = [&] {
    if (status_shown) std::fputs("\r\033[K", stderr);
    status_shown = false;
  };
  auto roots = stream_options.log_roots;
  if (roots.empty()) roots = {store.run_dir(run_id)};
  stream::LogTail build_log(roots, store::RunTree::relative_system_logs(), "env_build.txt");
  std::string last_step;
  std::int64_t preparing_since = -1;
  bool environment_said = false;
  auto say = [&](const std::string& line) {
    clear_status();
    auto write = [&](const std::string& bytes) {
      if (!bytes.empty() && shared_terminal) {
        try {
          util::write_all(log_fd, bytes, "cannot write the log");
        } catch (const util::Error&) {
        }
      }
    };
    write(renderer->hide());
    std::fprintf(stderr, "%s\n", line.c_str());
    std::fflush(stderr);
    write(renderer->show());
  };
  bool progress = text && !options.quiet;
  auto follow_preparing = [&](const store::RunRecord& record) {
    if (record.state == store::RunState::preparing) {
      if (preparing_since < 0) preparing_since = util::monotonic_ms();
      for (const auto& line : build_log.new_lines()) {
        if (!line.empty()) last_step = line;
        if (!status_terminal) say("amlrun: environment: " + util::escape_control(line));
      }
      if (status_terminal && !last_step.empty()) {
        double seconds = static_cast<double>(util::monotonic_ms() - preparing_since) / 1000.0;
        std::fprintf(stderr, "\r\033[K%s",
                     stream::preparing_status(record.id, seconds, last_step,
                                              static_cast<std::size_t>(terminal_width(2)))
                         .c_str());
        std::fflush(stderr);
        status_shown = true;
      }
      return;
    }
    clear_status();
    if (preparing_since >= 0 && !status_terminal) {
      // What the build wrote after the last look, before the state moved on.
      for (const auto& line : build_log.new_lines()) {
        say("amlrun: environment: " + util::escape_control(line));
      }
    }
    preparing_since = -1;
    // Once prepared: one line on how (a cache hit, or the build's time).
    if (!environment_said && record.prepared_environment && !store::is_terminal(record.state)) {
      environment_said = true;
      const auto& prepared = *record.prepared_environment;
      say(prepared.cache_hit
              ? fmt::format("amlrun: {} environment cached: {}", record.id, prepared.location)
              : fmt::format("amlrun: {} environment built in {}: {}", record.id,
                            util::format_duration(prepared.seconds), prepared.location));
    }
  };
  stream_options.interrupt_fd = g_interrupt_pipe[0];
  stream_options.refresh = [&](store::RunRecord record) { return target->refresh(store, record); };
  stream_options.on_state = [&](const store::RunRecord& record) {
    // Preparing and Running are what a person waits through; the other
    // states pass in milliseconds locally.
    if (progress &&
        (record.state == store::RunState::preparing || record.state == store::RunState::running)) {
      say(fmt::format("amlrun: {} {}", record.id, store::to_string(record.state)));
    }
  };
  // On a cluster, Starting can last: say which job to look for in squeue,
  // and why it waits, whenever that changes.
  std::string last_note;
  stream_options.on_record = [&](const store::RunRecord& record) {
    if (progress) follow_preparing(record);
    std::string note = target->progress_note(record);
    if (progress && !note.empty() && note != last_note) {
      say(fmt::format("amlrun: {} {}", record.id, note));
    }
    last_note = note;
  };
  stream_options.on_warning = [&](const std::string& warning) {
    say(fmt::format("amlrun: warning: {}", warning));
  };
  util::timing_mark("following");
  auto result = stream::stream_run(store, run_id, stream_options);
  util::timing_mark("run ended");
  clear_status();
  const auto& record = result.record;
  if (result.interrupted) {
    std::fprintf(stderr,
                 "amlrun: detached from %s; the run goes on (amlrun stream %s reattaches, amlrun "
                 "cancel %s stops it)\n",
                 run_id.c_str(), run_id.c_str(), run_id.c_str());
    return ExitCode::interrupted;
  }
  // The run's owner writes its last lines after the end is recorded: wait
  // for it, so nothing of the run still writes once amlrun returns.
  target->settle(store, record);
  if (!text) {
    std::printf("%s\n", run_json(store, record).dump(2).c_str());
  } else {
    std::string ending =
        fmt::format("amlrun: {} {} in {}", record.id, store::to_string(record.state),
                    util::format_duration(record.duration_seconds()));
    if (record.exit_code) ending += fmt::format(", exit code {}", *record.exit_code);
    if (!record.failure_reason.empty()) ending += fmt::format(" ({})", record.failure_reason);
    for (const auto& warning : record.warnings) {
      std::fprintf(stderr, "amlrun: warning: %s\n", util::escape_control(warning).c_str());
    }
    std::fprintf(stderr, "%s\n", util::escape_control(ending).c_str());
    auto outputs = store.run_dir(record.id) / "artifacts" / "outputs";
    std::fprintf(stderr, "amlrun: outputs: %s\n", outputs.c_str());
  }
  return exit_code_for_record(record);
}

}  // namespace amlrun::cli
