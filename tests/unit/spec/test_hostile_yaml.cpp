// Hostile YAML: every case must end in a clear error, fast, never a crash or hang.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <catch2/catch.hpp>

#include "lib/util/time.hpp"
#include "spec_test_support.hpp"

using namespace spec_test;

TEST_CASE("600-deep nesting is refused at the depth limit") {
  JobDir dir;
  std::string flow = "command: x\na: " + std::string(600, '[') + std::string(600, ']') + "\n";
  CHECK(errors_of(dir, flow) ==
        "job.yml:2:67: nesting is deeper than 64 levels; a job file needs only a few\n"
        "1 error in job.yml");
  std::string block = "command: x\n";
  for (int i = 0; i < 600; ++i) block += std::string(i, ' ') + "k:\n";
  CHECK(errors_of(dir, block)
            .starts_with(
                "job.yml:66:65: nesting is deeper than 64 levels; a job file needs only a few\n"));
  // Far deeper than yaml-cpp's own recursion guard, unclosed: still an error.
  CHECK(errors_of(dir, "a: " + std::string(200000, '{')) ==
        "job.yml:1:67: nesting is deeper than 64 levels; a job file needs only a few\n"
        "1 error in job.yml");
}

TEST_CASE("an alias cycle is refused") {
  JobDir dir;
  CHECK(errors_of(dir, "command: x\na: &a [*a]\n") ==
        "job.yml:2:8: alias '*a' refers to a node that contains it (a cycle)\n"
        "    2 | a: &a [*a]\n"
        "      |        ^\n"
        "1 error in job.yml");
  CHECK(errors_of(dir, "command: x\na: &a {b: *a}\n")
            .starts_with("job.yml:2:11: alias '*a' refers to a node that contains it (a cycle)\n"));
}

TEST_CASE("an alias bomb is refused without being expanded") {
  JobDir dir;
  std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  for (int level = 0; level < 30; ++level) {
    char name = static_cast<char>('b' + level % 24);
    char previous = static_cast<char>('a' + level % 24);
    if (level >= 24) break;
    bomb += fmt::format("{0}: &{0} [*{1}, *{1}, *{1}, *{1}, *{1}, *{1}, *{1}, *{1}, *{1}, *{1}]\n",
                        name, previous);
  }
  auto start = amlrun::util::monotonic_ms();
  CHECK(errors_of(dir, bomb).starts_with(
      "job.yml:5:44: the document expands to more than 100000 nodes (are aliases multiplying "
      "each other?); refusing to expand it\n"));
  CHECK(amlrun::util::monotonic_ms() - start < 1000);
}

TEST_CASE("duplicate keys are an error naming both lines") {
  JobDir dir;
  CHECK(errors_of(dir, "command: a\ncode: src\ncommand: b\n") ==
        "job.yml:3:1: duplicate key 'command' (first defined at line 1)\n"
        "    3 | command: b\n"
        "      | ^\n"
        "1 error in job.yml");
  CHECK(
      errors_of(dir, "command: a\nresources:\n  instance_count: 1\n  instance_count: 2\n")
          .starts_with("job.yml:4:3: duplicate key 'instance_count' (first defined at line 3)\n"));
}

TEST_CASE("NUL bytes and invalid UTF-8 are refused with their position") {
  JobDir dir;
  CHECK(errors_of(dir, std::string("command: x\nfoo: a\0b\n", 19)) ==
        "job.yml:2:7: contains a NUL byte; a job file must be text\n"
        "    2 | foo: a?b\n"
        "      |       ^\n"
        "1 error in job.yml");
  CHECK(errors_of(dir, "command: \xff\xfe\n") ==
        "job.yml:1:10: is not valid UTF-8; save the file as UTF-8 text\n"
        "    1 | command: \xff\xfe\n"
        "      |          ^\n"
        "1 error in job.yml");
}

TEST_CASE("a 1 GB file, a FIFO and a device are refused before reading") {
  JobDir dir;
  auto big = dir.path / "big.yml";
  {
    int fd = ::open(big.c_str(), O_WRONLY | O_CREAT, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(::ftruncate(fd, 1LL << 30) == 0);  // sparse: costs no disk
    ::close(fd);
  }
  auto message = [](const fs::path& path) {
    try {
      amlrun::spec::load_job_spec(path);
    } catch (const amlrun::util::InputError& error) {
      return std::string(error.what());
    }
    return std::string("<no error>");
  };
  auto start = amlrun::util::monotonic_ms();
  CHECK(message(big) == big.string() + " is 1.0 GiB, more than the 4.0 MiB this file may have");
  CHECK(amlrun::util::monotonic_ms() - start < 1000);
  auto fifo = dir.path / "fifo.yml";
  REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
  CHECK(message(fifo) == fifo.string() + " is a FIFO; give a regular file");
  CHECK(message("/dev/urandom") == "/dev/urandom is a character device; give a regular file");
  CHECK(message(dir.path / "missing.yml") ==
        "cannot open " + (dir.path / "missing.yml").string() + ": No such file or directory");
  CHECK(message(dir.path) == dir.path.string() + " is a directory; give a regular file");
}

TEST_CASE("syntax errors point at the place and explain") {
  JobDir dir;
  CHECK(errors_of(dir, "command: x\n\tcode: src\n") ==
        "job.yml:2:1: a tab is used for indentation; YAML indents with spaces\n"
        "    2 |  code: src\n"
        "      | ^\n"
        "1 error in job.yml");
  CHECK(errors_of(dir, "command: x\nx: [1, 2\n") ==
        "job.yml:3:1: a list is not closed (missing ']'?)\n1 error in job.yml");
  CHECK(errors_of(dir, "command: 'x'\n---\ncommand: y\n") ==
        "job.yml:2:1: a second YAML document starts here; a job file holds exactly one\n"
        "    2 | ---\n"
        "      | ^\n"
        "1 error in job.yml");
  CHECK(errors_of(dir, "? [a]\n: b\n")
            .starts_with("job.yml:1:3: a key must be a plain string, not a list\n"));
}

TEST_CASE("the document must be a map") {
  JobDir dir;
  CHECK(errors_of(dir, "") ==
        "job.yml:1:1: the file is empty; a job file is a YAML map with command, code, "
        "environment and the like\n1 error in job.yml");
  CHECK(errors_of(dir, "- a\n- b\n")
            .starts_with("job.yml:1:1: a job file is a YAML map of keys such as command, code and "
                         "environment; got "
                         "a list\n"));
}

TEST_CASE("merge keys work and explicit keys win") {
  JobDir dir;
  auto loaded = load(dir,
                     "environment_variables: &vars {A: '1', B: '2'}\n"
                     "tags:\n"
                     "  <<: *vars\n"
                     "  B: '3'\n"
                     "command: echo\n");
  using Pairs = std::vector<std::pair<std::string, std::string>>;
  CHECK(loaded.spec.tags == Pairs{{"B", "3"}, {"A", "1"}});
  CHECK(loaded.spec.environment_variables == Pairs{{"A", "1"}, {"B", "2"}});
}

TEST_CASE("a UTF-16 surrogate escape is explained") {
  JobDir dir;
  CHECK(errors_of(dir, "command: \"\\ud83d\\ude80\"\n")
            .starts_with("job.yml:1:17: \\uD83D is half of a UTF-16 surrogate pair, which YAML "
                         "does not accept; write "
                         "the character itself or one \\U escape (8 hex digits)\n"));
}

TEST_CASE("an unterminated quoted string is an error, not the rest of the file") {
  JobDir dir;
  // yaml-cpp reads to the end of the file; the command became
  // "echo hi limits: timeout: 5 " and the timeout was lost.
  CHECK(errors_of(dir, "command: \"echo hi\nlimits:\n  timeout: 5\n") ==
        "job.yml:1:10: unterminated string starting at 1:10: the closing \" is missing, so the "
        "rest of the file would be read as part of it\n"
        "    1 | command: \"echo hi\n"
        "      |          ^\n"
        "1 error in job.yml");
  CHECK(errors_of(dir, "command: 'echo hi\nlimits:\n  timeout: 5\n")
            .starts_with("job.yml:1:10: unterminated string starting at 1:10: the closing ' is "
                         "missing"));
  // As a key, inside a list, after escaped quotes: the same.
  CHECK(errors_of(dir, "\"command: x\n").starts_with("job.yml:1:1: unterminated string"));
  CHECK(errors_of(dir, "command: x\ntags: [\"a]\n")
            .starts_with("job.yml:2:8: unterminated string starting at 2:8"));
  CHECK(errors_of(dir, "command: \"a \\\" b\n").starts_with("job.yml:1:10: unterminated string"));
  CHECK(errors_of(dir, "command: 'it''s\n").starts_with("job.yml:1:10: unterminated string"));
  // Closed strings, also over several lines and with escaped quotes, are fine.
  CHECK(load(dir, "command: \"echo \\\"hi\\\"\n  there\"\n").spec.command == "echo \"hi\" there");
  CHECK(load(dir, "command: 'it''s'\n").spec.command == "it's");
  CHECK(load(dir,
             "\xEF\xBB\xBF"
             "command: \"x\"\n")
            .spec.command == "x");
}

TEST_CASE("parser errors name the real mistake") {
  JobDir dir;
  // A tab in the indentation of a nested key.
  CHECK(errors_of(dir, "command: x\nresources:\n\tinstance_count: 1\n") ==
        "job.yml:3:1: a tab is used for indentation; YAML indents with spaces\n"
        "    3 |  instance_count: 1\n"
        "      | ^\n"
        "1 error in job.yml");
  CHECK(errors_of(dir, "command: x\nresources:\n  \tinstance_count: 1\n")
            .starts_with("job.yml:3:3: a tab is used for indentation; YAML indents with spaces\n"));
  // A key longer than YAML allows.
  CHECK(errors_of(dir, "command: x\n" + std::string(3000000, 'k') + ": 1\n") ==
        "job.yml:2:1: this key is 3000000 characters long; YAML allows at most 1024 in a key (job "
        "file keys are short names)\n"
        "1 error in job.yml");
  CHECK(errors_of(dir, "command: x\ntags:\n  " + std::string(1025, 'k') + ": 1\n")
            .starts_with("job.yml:3:3: this key is 1025 characters long; YAML allows at most "
                         "1024 in a key"));
  // 1024 is still a key (an unknown one).
  CHECK(
      errors_of(dir, "command: x\n" + std::string(1024, 'k') + ": 1\n").find(": unknown key 'k") !=
      std::string::npos);
  // Text after a closing quote or bracket.
  CHECK(errors_of(dir, "command: \"x\" y\n") ==
        "job.yml:1:14: unexpected text after the closing quote (a quoted value ends at its "
        "closing quote; quote the whole value)\n"
        "    1 | command: \"x\" y\n"
        "      |              ^\n"
        "1 error in job.yml");
  CHECK(errors_of(dir, "command: 'x' y\n")
            .starts_with("job.yml:1:14: unexpected text after the closing quote"));
  CHECK(errors_of(dir, "command: x\ntags: {a: \"b\" c}\n")
            .starts_with("job.yml:2:15: unexpected text after the closing quote"));
  CHECK(errors_of(dir, "command: x\nfoo:\n  - \"a\" b\n")
            .starts_with("job.yml:3:9: unexpected text after the closing quote"));
  CHECK(errors_of(dir, "command: x\ntags: [a] b\n")
            .starts_with("job.yml:2:11: unexpected text after the closing ']'\n"));
}

TEST_CASE("many plain values are refused by the value limit, not blamed on aliases") {
  JobDir dir;
  std::string tags = "command: x\ntags: [";
  for (int i = 0; i < 200000; ++i) tags += i ? ", a" : "a";
  tags += "]\n";
  CHECK(errors_of(dir, tags) ==
        "job.yml:2:300005: the document holds more than 100000 values (keys, list entries and "
        "scalars); a job file needs far fewer\n"
        "1 error in job.yml");
}

TEST_CASE("UTF-16 and UTF-32 files are named as such") {
  JobDir dir;
  auto utf16le = [](const std::string& ascii, bool bom) {
    std::string out = bom ? "\xFF\xFE" : "";
    for (char c : ascii) out += std::string{c, '\0'};
    return out;
  };
  CHECK(errors_of(dir, utf16le("command: x\n", true)) ==
        "job.yml: is UTF-16 text; save the file as UTF-8\n1 error in job.yml");
  CHECK(errors_of(dir, utf16le("command: x\n", false)) ==
        "job.yml: is UTF-16 text; save the file as UTF-8\n1 error in job.yml");
  CHECK(errors_of(dir, std::string("\xFE\xFF\0c\0o", 6)) ==
        "job.yml: is UTF-16 text; save the file as UTF-8\n1 error in job.yml");
  CHECK(errors_of(dir, std::string("\xFF\xFE\0\0c\0\0\0", 8)) ==
        "job.yml: is UTF-32 text; save the file as UTF-8\n1 error in job.yml");
}
