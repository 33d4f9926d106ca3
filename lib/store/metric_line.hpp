#pragma once
// One line of a metrics file (DESIGN.md protocol):
//   {"name": "loss", "value": 0.31, "step": 120}
// "value" is a number or one of "NaN", "Infinity", "-Infinity"; "step" is a
// non-negative integer and may be left out; other keys are ignored, so
// writers may add fields.
#include <cstdint>
#include <string>
#include <string_view>

namespace amlrun::store {

struct MetricLine {
  std::string name;
  double value = 0;
  bool has_step = false;
  std::int64_t step = 0;
};

enum class LineVerdict {
  ok,
  not_an_object,  // not JSON, or JSON but not an object
  no_name,        // "name" missing or not a string
  bad_value,      // "value" missing or not a number / "NaN" / "Infinity" / "-Infinity"
  bad_step,       // "step" present but not a non-negative integer
  // Numbers JSON allows but a double or the step counter cannot hold
  // (1e400, 400 digits, a step past 2^63 - 1): said as such, not "not JSON".
  value_out_of_range,
  step_out_of_range,
  number_out_of_range,  // in another key: the line cannot be read at all
};

// Reads a line: a shortcut for the canonical shape (what every writer
// produces: the three keys, plain strings), then nlohmann's SAX parser for
// everything else. The shortcut only ever accepts what the full parser
// would read the same way (tests compare them); it makes ingesting a
// million points several times faster.
LineVerdict read_metric_line(std::string_view line, MetricLine& out);

// The full parser alone (tests compare the two).
LineVerdict read_metric_line_slowly(std::string_view line, MetricLine& out);

// The shortcut alone: true when it read the line (then as read_metric_line_slowly
// would), false when the line needs the full parser.
bool read_canonical_metric_line(std::string_view line, MetricLine& out);

// A message for a verdict other than ok, for "rank_0.jsonl:12: ...".
const char* describe(LineVerdict verdict);

}  // namespace amlrun::store
