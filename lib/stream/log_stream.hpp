#pragma once
// Following a run: its per-rank logs as they are written (inotify, so a line
// shows within milliseconds) and its state until it is terminal. Works the
// same for a run in progress and for one that ended (the whole log, then the
// end), so `amlrun stream ID` reattaches at any time.
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "lib/store/run_store.hpp"
#include "lib/stream/log_render.hpp"

namespace amlrun::stream {

// A log followed besides the run's own ranks: a sweep's trial under
// --all-trials. `source` is its key for the renderer (set its prefix there;
// keep it clear of rank numbers), `roots` where to look, as log_roots.
struct ExtraLog {
  int source = 0;
  std::vector<std::filesystem::path> roots;
  int rank = 0;
};

struct StreamOptions {
  bool all_ranks = false;  // every rank, each line prefixed "[rank N] "; else rank 0
  int output_fd = 1;       // where the user's log lines go
  // How the log's bytes are shown (a terminal draws '\r' lines in place).
  // The caller keeps a share to take the live line off the screen around
  // lines of its own (LogRenderer::hide/show). Null: passed through as
  // written, prefixed per all_ranks.
  std::shared_ptr<LogRenderer> renderer;
  // Called on every state seen (the first included).
  std::function<void(const store::RunRecord&)> on_state;
  // A descriptor that becomes readable when the user interrupts (Ctrl-C).
  int interrupt_fd = -1;
  // Brings the record up to date via the compute target (a lost supervisor,
  // a Slurm job's progress). Called at the start and then once a second.
  std::function<store::RunRecord(store::RunRecord)> refresh;
  // Called with every record the stream reads (after each refresh), so the
  // caller can say what is new besides the state (a Slurm job's pending
  // reason).
  std::function<void(const store::RunRecord&)> on_record;
  // One-line warnings (a rank log replaced by a link, which is not read).
  std::function<void(const std::string&)> on_warning;
  // The run directories (store::RunTree roots) where the captured rank logs
  // appear, in the order to look (the target's log_roots()); empty: the
  // run's directory in the workspace. A file is followed from the first
  // root it is found in, also when it is moved (renamed) to a later one.
  // Every file is opened without following links.
  std::vector<std::filesystem::path> log_roots;
  // Directories where a file appearing (created or renamed into place) may
  // change the run's state, such as a Slurm run's status.json: refresh is
  // then called at once instead of at the next second.
  std::vector<std::filesystem::path> state_dirs;
  // Further logs, asked for on every pass (new ones appear as a sweep
  // starts trials); each is followed from the start once found.
  std::function<std::vector<ExtraLog>()> extra_logs;
};

struct StreamResult {
  bool interrupted = false;
  store::RunRecord record;  // terminal unless interrupted
};

StreamResult stream_run(store::RunStore& store, const std::string& run_id,
                        const StreamOptions& options);

}  // namespace amlrun::stream
