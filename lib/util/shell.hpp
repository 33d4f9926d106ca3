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

// A command line for a remote user's login shell, whatever it is (sh, bash,
// dash, zsh, tcsh, csh, fish): ssh hands its command string to that shell,
// which parses it by its own rules. The POSIX sh `script` travels base64
// encoded inside one single-quoted word made only of characters every such
// shell takes literally, and /bin/sh decodes and runs it, so no byte of the
// script is ever parsed by the login shell. The script's exit status 255 is
// reported as 254: ssh itself exits 255 when it fails, and a caller must be
// able to tell the two apart.
std::string login_shell_command(std::string_view script);

}  // namespace amlrun::util
