#pragma once
// UTF-8 as amlrun stores it: every text that goes into a JSON file or the
// index (records, manifests, tags) must be valid UTF-8, since the JSON
// writer refuses anything else. The rule here is the one the writer
// applies (RFC 3629: no overlong forms, no surrogates, nothing above
// U+10FFFF), so text checked here can always be stored.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace amlrun::util {

// The length of the well-formed UTF-8 sequence starting at text[at] (1-4),
// with its code point in `code`; 0 when the bytes there are not one.
std::size_t utf8_sequence(std::string_view text, std::size_t at, char32_t& code);

// Offset of the first byte that does not start a well-formed sequence, or npos.
std::size_t first_invalid_utf8(std::string_view text);

// Code points in valid UTF-8 text (each invalid byte counts as one).
std::size_t utf8_length(std::string_view text);

// Throws InputError when `text` is not valid UTF-8, naming `what` (an
// argument such as "--description", or "the file name ...") and the byte:
// "--description: '\xff' is not valid UTF-8 (byte 1 is 0xff); amlrun stores text as UTF-8".
void check_utf8(std::string_view text, std::string_view what);

// The key path ("tags.k", "history[2].at") of the first string or key in
// `json` that is not valid UTF-8, with the offending text; nullopt when
// everything can be written.
struct InvalidUtf8 {
  std::string path;
  std::string text;
};
std::optional<InvalidUtf8> find_invalid_utf8(const nlohmann::json& json);
std::optional<InvalidUtf8> find_invalid_utf8(const nlohmann::ordered_json& json);

}  // namespace amlrun::util
