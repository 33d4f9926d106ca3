#pragma once
// The one place that turns strings into shell words. Everything a user wrote
// that ends up in a shell script (sbatch scripts, the command-job wrapper)
// goes through shell_quote; nothing is spliced into a shell line unquoted.
#include <string>
#include <string_view>
#include <vector>

namespace amlrun::util {

// POSIX single-quote quoting: the result is one word whose value is exactly
// `value` (spaces, quotes, $(), backticks, newlines and non-ASCII included).
// Plain words made only of [A-Za-z0-9_@%+=:,./-] are returned as they are.
std::string shell_quote(std::string_view value);

// argv as one shell line, each word quoted.
std::string shell_join(const std::vector<std::string>& argv);

}  // namespace amlrun::util
