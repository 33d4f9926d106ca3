#include "lib/train/messages.hpp"

#include <unistd.h>

#include <atomic>
#include <string>

#include <fmt/format.h>

namespace amlrun::train {

namespace {

std::atomic<int> g_rank{0};
std::atomic<int> g_world_size{1};

void emit(std::string_view kind, std::string_view message) {
  std::string line = "amlrun-worker: ";
  if (g_world_size.load() > 1) {
    line += fmt::format("rank {}: ", g_rank.load());
  }
  line += kind;
  line += message;
  line += '\n';
  // One write per message, so lines of concurrent ranks and threads stay whole.
  ssize_t ignored = ::write(2, line.data(), line.size());
  (void)ignored;
}

}  // namespace

void set_message_rank(int rank, int world_size) {
  g_rank = rank;
  g_world_size = world_size;
}

void worker_warning(std::string_view message) {
  emit("warning: ", message);
}
void worker_notice(std::string_view message) {
  emit("", message);
}
void worker_error(std::string_view message) {
  emit("error: ", message);
}

}  // namespace amlrun::train
