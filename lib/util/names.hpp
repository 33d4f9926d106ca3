#pragma once
#include <string>
#include <string_view>

namespace amlrun::util {

// Run, experiment, model and target names: [A-Za-z0-9][A-Za-z0-9._-]{0,127}.
// Such a name is always a safe single path component and shell word.
bool is_valid_name(std::string_view name);

// Throws InputError: "invalid experiment name 'a/b': use 1-128 characters from
// [A-Za-z0-9._-], starting with a letter or digit".
void check_name(std::string_view kind, std::string_view name);

// Turns any text (a directory name, say) into a valid name, or "" if nothing
// usable is left; used for default experiment names.
std::string sanitize_name(std::string_view text);

}  // namespace amlrun::util
