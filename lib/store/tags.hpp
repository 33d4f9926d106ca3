#pragma once
// Tags as users write them on the command line: `key=value` (amlrun runs tag,
// amlrun model register --tag).
#include <string>
#include <string_view>
#include <utility>

namespace amlrun::store {

using Tag = std::pair<std::string, std::string>;

// "key=value" → {key, value}; the value may be empty and may hold '='.
// Keys: 1-128 printable characters without spaces or '='; values: up to 1024
// characters without control characters (they are printed in tables).
// Throws InputError naming the tag and the rule.
Tag parse_tag(std::string_view text);

// The same rules for a key alone (amlrun runs tag --remove KEY).
void check_tag_key(std::string_view key);

}  // namespace amlrun::store
