#pragma once
// Messages of amlrun-worker for people, on stderr: "amlrun-worker: warning:
// ...". Under MPI every rank writes to its own log, so a message carries the
// rank when the world has more than one process.
#include <string_view>

namespace amlrun::train {

void set_message_rank(int rank, int world_size);
void worker_warning(std::string_view message);
void worker_notice(std::string_view message);
// "amlrun-worker: error: ..." (the CLI's single catch uses it too).
void worker_error(std::string_view message);

}  // namespace amlrun::train
