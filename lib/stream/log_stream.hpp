#pragma once
// Following a run: its per-rank logs as they are written (inotify, so a line
// shows within milliseconds) and its state until it is terminal. Works the
// same for a run in progress and for one that ended (the whole log, then the
// end), so `amlrun stream ID` reattaches at any time.
#include <functional>
#include <string>

#include "lib/store/run_store.hpp"

namespace amlrun::stream {

struct StreamOptions {
  bool all_ranks = false;  // every rank, each line prefixed "[rank N] "; else rank 0
  int output_fd = 1;       // where the user's log lines go
  // Called on every state seen (the first included).
  std::function<void(const store::RunRecord&)> on_state;
  // A descriptor that becomes readable when the user interrupts (Ctrl-C).
  int interrupt_fd = -1;
  // Brings the record up to date via the compute target (a lost supervisor).
  std::function<store::RunRecord(store::RunRecord)> refresh;
};

struct StreamResult {
  bool interrupted = false;
  store::RunRecord record;  // terminal unless interrupted
};

StreamResult stream_run(store::RunStore& store, const std::string& run_id,
                        const StreamOptions& options);

}  // namespace amlrun::stream
