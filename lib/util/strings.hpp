#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace amlrun::util {

std::size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `word` by edit distance, when it is close enough to
// be a plausible typo (distance at most a third of the word, at least 1, or
// one is a prefix of the other); used for every "did you mean" in amlrun.
std::optional<std::string> closest_match(std::string_view word,
                                         const std::vector<std::string>& candidates);

// " (did you mean 'x'?)" or "" — ready to append to a message.
std::string did_you_mean_suffix(std::string_view word, const std::vector<std::string>& candidates);

std::vector<std::string> split(std::string_view text, char separator);
std::string join(const std::vector<std::string>& parts, std::string_view separator);
std::string_view trim(std::string_view text);

// "1.5 GiB", "12 KiB", "800 B".
std::string format_bytes(std::uint64_t bytes);

// A string shown inside an error message: quoted, with control characters
// (C0, DEL, C1) and bytes that are not UTF-8 escaped, so a message never
// spans lines, hides bytes or sends a terminal a command.
std::string printable(std::string_view text, std::size_t max_length = 80);

// Stored text (a display name, a description, tags, file names) as a
// terminal may show it: the escapes of printable(), unquoted and uncut.
// Every terminal output of text amlrun did not write itself goes through it;
// JSON output needs no such care (the JSON writer escapes controls).
std::string escape_control(std::string_view text);

}  // namespace amlrun::util
