#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace amlrun::util {

using Clock = std::chrono::system_clock;
using TimePoint = Clock::time_point;

// "20261122T010600" (UTC), as used in run ids.
std::string utc_compact(Clock::time_point when);
// "2026-11-22T01:06:00.123Z" (UTC, milliseconds), as stored in run records.
std::string utc_iso8601(Clock::time_point when);
// Parses utc_iso8601 output back; nullopt-like: returns epoch on malformed input.
Clock::time_point parse_utc_iso8601(const std::string& text);
// Milliseconds of a steady clock, for durations and timeouts.
std::int64_t monotonic_ms();
// "1h 02m 03s", "4.2s", "35ms".
std::string format_duration(double seconds);

}  // namespace amlrun::util
