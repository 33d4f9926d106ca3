#include <catch2/catch.hpp>

#include "lib/ui/html.hpp"

using namespace amlrun;

TEST_CASE("html escapes markup, quotes, control characters and bad UTF-8") {
  CHECK(ui::html("<script>alert(1)</script>") == "&lt;script&gt;alert(1)&lt;/script&gt;");
  CHECK(ui::html("\"><img src=x onerror=alert(1)>") ==
        "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;");
  CHECK(ui::html("a & b 'c'") == "a &amp; b &#39;c&#39;");
  CHECK(ui::html("tab\tnewline\n") == "tab\tnewline\n");
  CHECK(ui::html(std::string("bell\x07") + "x") == "bell\xEF\xBF\xBDx");
  CHECK(ui::html("\xff") == "\xEF\xBF\xBD");
  CHECK(ui::html("ünïcödé €") == "ünïcödé €");
}

TEST_CASE("script_json cannot end its script block or break a line in JavaScript") {
  nlohmann::json value = {{"name", "</script><script>alert(1)</script>"},
                          {"amp", "a&b"},
                          {"separator", "x\xE2\x80\xA8y"}};
  std::string text = ui::script_json(value);
  CHECK(text.find('<') == std::string::npos);
  CHECK(text.find('>') == std::string::npos);
  CHECK(text.find('&') == std::string::npos);
  CHECK(
      text ==
      R"({"amp":"a\u0026b","name":"\u003c/script\u003e\u003cscript\u003ealert(1)\u003c/script\u003e","separator":"x\u2028y"})");
  // Read back, it is the same value.
  CHECK(nlohmann::json::parse(text) == value);
  CHECK(ui::script_json(nlohmann::json("\xff")) == "\"\xEF\xBF\xBD\"");
}

TEST_CASE("url_segment percent-encodes everything but unreserved characters") {
  CHECK(ui::url_segment("exp_20260101T000000_ab12cd34") == "exp_20260101T000000_ab12cd34");
  CHECK(ui::url_segment("../a b/\"<>") == "..%2Fa%20b%2F%22%3C%3E");
  CHECK(ui::url_segment("é") == "%C3%A9");
}

TEST_CASE("valid_utf8 keeps good sequences and replaces each bad byte") {
  CHECK(ui::valid_utf8("ok €") == "ok €");
  CHECK(ui::valid_utf8("a\xC3(b") == "a\xEF\xBF\xBD(b");
  CHECK(ui::valid_utf8("\xE2\x82") == "\xEF\xBF\xBD\xEF\xBF\xBD");
}
