#pragma once
// Text from a run (names, tags, params, metric names, log lines, file
// names) on a web page: escaped for the place it goes, so it is always
// shown as text and never read as markup, script or another URL.
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace amlrun::ui {

// For element content and quoted attribute values: & < > " ' become
// entities; bytes that are not UTF-8 become U+FFFD; control characters
// other than tab and newline become U+FFFD (they are not text).
std::string html(std::string_view text);

// JSON for a <script type="application/json"> block: '<', '>', '&' and
// U+2028/U+2029 written as \u escapes, so "</script>" in a value cannot end
// the block; strings that are not UTF-8 get U+FFFD.
std::string script_json(const nlohmann::json& value);

// One path segment of a URL: everything but A-Z a-z 0-9 - . _ ~ is
// percent-encoded ("/" included).
std::string url_segment(std::string_view text);

// Bytes as UTF-8 text: every byte that does not start a well-formed
// sequence becomes U+FFFD.
std::string valid_utf8(std::string_view bytes);

}  // namespace amlrun::ui
