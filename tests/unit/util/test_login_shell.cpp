// util::login_shell_command: a script reaches /bin/sh byte for byte whatever
// login shell parses the command line first. Run through the real shells
// that ssh would hand it to (sh, dash, bash, tcsh: Debian packages here).
#include <catch2/catch.hpp>

#include <filesystem>

#include "lib/util/process.hpp"
#include "lib/util/shell.hpp"

using namespace amlrun;

namespace {

util::CaptureResult run_in(const std::string& shell, const std::string& command) {
  util::SpawnOptions options;
  options.argv = {shell, "-c", command};
  return util::run_capture(options, {}, std::chrono::seconds(20));
}

const std::vector<std::string> k_hostile = {"plain",
                                            "two words",
                                            "it's",
                                            "\"quoted\"",
                                            "$(touch /tmp/amlrun-pwned)",
                                            "`id`",
                                            "!event",
                                            "semi;colon",
                                            "*",
                                            "new\nline",
                                            "back\\slash",
                                            "tab\there",
                                            "$HOME",
                                            "~",
                                            "{a,b}",
                                            "caf\xc3\xa9 \xe2\x9c\x93",
                                            "%s %n",
                                            "a && b || c",
                                            "#not-a-comment",
                                            ""};

}  // namespace

TEST_CASE("a script survives every login shell unchanged") {
  std::string script = "printf '[%s]\\n'";
  std::string expected;
  for (const auto& value : k_hostile) {
    script += " " + util::shell_quote(value);
    expected += "[" + value + "]\n";
  }
  std::string command = util::login_shell_command(script);
  for (const std::string shell : {"/bin/sh", "/bin/dash", "/bin/bash", "/usr/bin/tcsh"}) {
    INFO(shell);
    REQUIRE(std::filesystem::exists(shell));
    auto result = run_in(shell, command);
    CHECK(result.err == "");
    CHECK(result.exit_code == 0);
    CHECK(result.out == expected);
  }
  CHECK_FALSE(std::filesystem::exists("/tmp/amlrun-pwned"));
}

TEST_CASE("the script's exit status comes back, 255 as 254") {
  for (const std::string shell : {"/bin/sh", "/usr/bin/tcsh"}) {
    INFO(shell);
    CHECK(run_in(shell, util::login_shell_command("exit 7")).exit_code == 7);
    CHECK(run_in(shell, util::login_shell_command("exit 255")).exit_code == 254);
    CHECK(run_in(shell, util::login_shell_command("true")).exit_code == 0);
  }
}

TEST_CASE("the command line holds only characters every shell takes literally in quotes") {
  std::string command = util::login_shell_command("echo \"$(id)\" '!' `x`\n");
  std::string inner = command.substr(command.find('\'') + 1);
  inner = inner.substr(0, inner.rfind('\''));
  CHECK(inner.find_first_of("'\\!`\n") == std::string::npos);
}
