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
// escaped so a message never spans lines or hides bytes.
std::string printable(std::string_view text, std::size_t max_length = 80);

}  // namespace amlrun::util
