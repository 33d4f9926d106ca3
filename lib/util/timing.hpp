#pragma once
// Phase timings for performance work: with AMLRUN_TIMING=1 in the
// environment, mark("snapshot") prints "amlrun[pid] timing: snapshot +1.234 ms
// (total 5.678 ms)" to stderr. Costs one getenv when off.
#include <string_view>

namespace amlrun::util {

void timing_mark(std::string_view phase);

}  // namespace amlrun::util
