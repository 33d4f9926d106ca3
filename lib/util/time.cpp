#include "lib/util/time.hpp"

#include <fmt/format.h>
#include <cmath>
#include <ctime>

namespace amlrun::util {

static std::tm to_utc(Clock::time_point when) {
  std::time_t t = Clock::to_time_t(when);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  return tm;
}

std::string utc_compact(Clock::time_point when) {
  std::tm tm = to_utc(when);
  return fmt::format("{:04}{:02}{:02}T{:02}{:02}{:02}", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

std::string utc_iso8601(Clock::time_point when) {
  std::tm tm = to_utc(when);
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(when.time_since_epoch()).count() % 1000;
  if (ms < 0) ms += 1000;
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

Clock::time_point parse_utc_iso8601(const std::string& text) {
  std::tm tm{};
  int milliseconds = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon,
                  &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &milliseconds) < 6) {
    return Clock::time_point{};
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  std::time_t seconds = ::timegm(&tm);
  return Clock::from_time_t(seconds) + std::chrono::milliseconds(milliseconds);
}

std::int64_t monotonic_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string format_duration(double seconds) {
  if (seconds < 1.0) return fmt::format("{}ms", std::lround(seconds * 1000.0));
  if (seconds < 60.0) return fmt::format("{:.1f}s", seconds);
  long total = std::lround(seconds);
  long hours = total / 3600;
  long minutes = (total % 3600) / 60;
  long secs = total % 60;
  if (hours > 0) return fmt::format("{}h {:02}m {:02}s", hours, minutes, secs);
  return fmt::format("{}m {:02}s", minutes, secs);
}

}  // namespace amlrun::util
