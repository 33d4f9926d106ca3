#pragma once
// Tags: key=value labels on runs and model versions. One rule for every way
// a tag comes in — a job file's `tags:`, `--set tags.k=v`, `amlrun runs tag`,
// `amlrun runs list --tag`, `amlrun model register --tag` — so any tag that
// can be stored can also be set, removed and filtered on:
//
// - key: 1-128 characters of UTF-8 text without '=' (the separator on the
//   command line) or control characters; spaces are fine ("team name").
// - value: at most 1024 characters of UTF-8 text without control
//   characters (tags are one-line labels printed in table cells).
//
// Characters are Unicode code points. The rule is permissive on purpose:
// Azure ML job files use free-form tag keys, and they must load as written.
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace amlrun::util {

using Tag = std::pair<std::string, std::string>;

inline constexpr std::size_t k_max_tag_key_characters = 128;
inline constexpr std::size_t k_max_tag_value_characters = 1024;

// Why `key` breaks the rule ("invalid tag key 'a=b': use ..."), or nullopt.
std::optional<std::string> tag_key_problem(std::string_view key);
// Why `value` (of tag `key`) breaks the rule, or nullopt.
std::optional<std::string> tag_value_problem(std::string_view key, std::string_view value);

// "key=value" → {key, value}; the value may be empty and may hold '='.
// Throws InputError with the problem.
Tag parse_tag(std::string_view text);

// The key rule alone (amlrun runs tag --remove KEY); throws InputError.
void check_tag_key(std::string_view key);
// Both rules, for tags that come as pairs (the stores check what they keep).
void check_tag(const Tag& tag);

// Tags as a JSON object, in their order (records, manifests, the index).
nlohmann::ordered_json tags_to_json(const std::vector<Tag>& tags);
// A JSON object of strings back to tags (none for anything but an object);
// a value that is not a string throws nlohmann's type_error, which the
// reader of the file reports.
std::vector<Tag> tags_from_json(const nlohmann::json& json);
std::vector<Tag> tags_from_json(const nlohmann::ordered_json& json);

}  // namespace amlrun::util
