// UTF-8, the escaping of stored text for terminals, and the tag rule.
#include <catch2/catch.hpp>

#include "../test_support.hpp"
#include "lib/util/strings.hpp"
#include "lib/util/tags.hpp"
#include "lib/util/utf8.hpp"

using namespace amlrun;
using unit_test::message_of;

TEST_CASE("UTF-8 is checked as the JSON writer checks it") {
  CHECK(util::first_invalid_utf8("") == std::string::npos);
  CHECK(util::first_invalid_utf8("plain ascii") == std::string::npos);
  CHECK(util::first_invalid_utf8("Grüße 東京 🙂") == std::string::npos);
  CHECK(util::first_invalid_utf8("\xff") == 0);
  CHECK(util::first_invalid_utf8("ab\xc3") == 2);             // cut short
  CHECK(util::first_invalid_utf8("a\xc0\xaf") == 1);          // overlong '/'
  CHECK(util::first_invalid_utf8("a\xe0\x80\xaf") == 1);      // overlong, three bytes
  CHECK(util::first_invalid_utf8("a\xf0\x80\x80\xaf") == 1);  // overlong, four bytes
  CHECK(util::first_invalid_utf8("\xed\xa0\x80") == 0);       // a UTF-16 surrogate
  CHECK(util::first_invalid_utf8("\xf4\x90\x80\x80") == 0);   // past U+10FFFF
  CHECK(util::first_invalid_utf8("\xf4\x8f\xbf\xbf") == std::string::npos);  // U+10FFFF
  CHECK(util::utf8_length("Grüße") == 5);
  CHECK(util::utf8_length("a\xff") == 2);
  // Whatever passes the check, nlohmann's writer takes; whatever fails, it refuses.
  for (std::string text : {"ok", "é", "\xed\xa0\x80", "\xc0\xaf", "\xf4\x90\x80\x80", "a\xff"}) {
    INFO(util::printable(text));
    bool valid = util::first_invalid_utf8(text) == std::string::npos;
    bool written = true;
    try {
      (void)nlohmann::json(text).dump();
    } catch (const nlohmann::json::type_error&) {
      written = false;
    }
    CHECK(valid == written);
  }
  CHECK(
      message_of([] { util::check_utf8("ab\xff", "--description"); }) ==
      "--description: 'ab\\xff' is not valid UTF-8 (byte 3 is 0xff); amlrun stores text as UTF-8");
  CHECK(message_of([] { util::check_utf8("fine", "--description"); }) == "<no error>");
}

TEST_CASE("the first text in a JSON document that is not UTF-8 is found by its key path") {
  nlohmann::ordered_json record = {{"id", "x"}, {"tags", {{"k", "v"}}}, {"history", {"a", "b"}}};
  CHECK_FALSE(util::find_invalid_utf8(record).has_value());
  record["history"][1] = "b\xff";
  auto found = util::find_invalid_utf8(record);
  REQUIRE(found.has_value());
  CHECK(found->path == "history[1]");
  CHECK(found->text == "b\xff");
  record["history"][1] = "b";
  record["tags"]["k\xfe"] = "v";
  REQUIRE(util::find_invalid_utf8(record).has_value());
  CHECK(util::find_invalid_utf8(record)->path == "tags.k\xfe");
}

TEST_CASE("stored text is shown with what a terminal would obey escaped") {
  CHECK(util::escape_control("plain text, ünïcödé") == "plain text, ünïcödé");
  CHECK(util::escape_control("clear\x1b[2Jscreen") == "clear\\x1b[2Jscreen");
  CHECK(util::escape_control("bell\a cr\r nl\n tab\t del\x7f") ==
        "bell\\x07 cr\\r nl\\n tab\\t del\\x7f");
  CHECK(util::escape_control("c1 \xc2\x9b"
                             "31m") == "c1 \\u009b31m");  // 8-bit CSI
  CHECK(util::escape_control("bad \xff byte") == "bad \\xff byte");
  CHECK(util::escape_control("it's") == "it's");
  CHECK(util::printable("it's\x1b") == "'it\\'s\\x1b'");
  CHECK(util::printable("ééé", 2) == "'éé...'");  // cut by characters, never inside one
}

TEST_CASE("one tag rule: keys and values as job files and Azure ML write them") {
  CHECK(util::parse_tag("team=vision") == util::Tag{"team", "vision"});
  CHECK(util::parse_tag("a b=two words") == util::Tag{"a b", "two words"});
  CHECK(util::parse_tag("k=a=b") == util::Tag{"k", "a=b"});
  CHECK(util::parse_tag("k=") == util::Tag{"k", ""});
  CHECK(util::parse_tag("ключ=значение") == util::Tag{"ключ", "значение"});
  CHECK(util::parse_tag(std::string(128, 'k') + "=" + std::string(1024, 'v')).first.size() == 128);
  CHECK_FALSE(util::tag_key_problem(std::string(128, 'k')).has_value());
  CHECK_FALSE(
      util::tag_key_problem(std::string(64, 'k') + "é").has_value());  // characters, not bytes
  const std::string key_rule =
      ": use 1-128 characters of UTF-8 text, without '=' or control characters";
  CHECK(message_of([] { util::parse_tag("novalue"); }) == "invalid tag 'novalue': write key=value");
  CHECK(message_of([] { util::parse_tag("=v"); }) == "invalid tag key ''" + key_rule);
  CHECK(message_of([] { util::parse_tag(std::string(129, 'k') + "=v"); }) ==
        "invalid tag key '" + std::string(80, 'k') + "...'" + key_rule);
  CHECK(message_of([] { util::parse_tag("a\x1b[2J=v"); }) ==
        "invalid tag key 'a\\x1b[2J'" + key_rule);
  CHECK(message_of([] { util::parse_tag("a\xff=v"); }) == "invalid tag key 'a\\xff'" + key_rule);
  CHECK(message_of([] { util::check_tag({"a=b", "v"}); }) == "invalid tag key 'a=b'" + key_rule);
  CHECK(message_of([] { util::parse_tag("k=a\nb"); }) ==
        "invalid value for tag 'k': use at most 1024 characters of UTF-8 text, without control "
        "characters (the value is 'a\\nb')");
  CHECK(message_of([] { util::parse_tag("k=\xff"); }) ==
        "invalid value for tag 'k': use at most 1024 characters of UTF-8 text, without control "
        "characters (the value is '\\xff')");
  CHECK(message_of([] { util::parse_tag("k=" + std::string(1025, 'v')); }) ==
        "invalid value for tag 'k': use at most 1024 characters of UTF-8 text, without control "
        "characters (the value is '" +
            std::string(40, 'v') + "...')");
  CHECK(message_of([] { util::check_tag_key("a\tb"); }) == "invalid tag key 'a\\tb'" + key_rule);
  CHECK(util::tags_to_json({{"b", "1"}, {"a", "2"}}).dump() == R"({"b":"1","a":"2"})");
  CHECK(util::tags_from_json(nlohmann::json::parse(R"({"a":"1"})")) ==
        std::vector<util::Tag>{{"a", "1"}});
  CHECK(util::tags_from_json(nlohmann::json::array()).empty());
}
