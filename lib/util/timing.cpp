#include "lib/util/timing.hpp"

#include <unistd.h>

#include <fmt/format.h>
#include <chrono>
#include <cstdlib>

namespace amlrun::util {

void timing_mark(std::string_view phase) {
  static const bool enabled = [] {
    const char* value = std::getenv("AMLRUN_TIMING");
    return value && *value && std::string_view(value) != "0";
  }();
  if (!enabled) return;
  using Clock = std::chrono::steady_clock;
  static const Clock::time_point start = Clock::now();
  static Clock::time_point last = start;
  auto now = Clock::now();
  std::string line =
      fmt::format("amlrun[{}] timing: {} +{:.3f} ms (total {:.3f} ms)\n", ::getpid(), phase,
                  std::chrono::duration<double, std::milli>(now - last).count(),
                  std::chrono::duration<double, std::milli>(now - start).count());
  last = now;
  ssize_t ignored = ::write(2, line.data(), line.size());
  (void)ignored;
}

}  // namespace amlrun::util
