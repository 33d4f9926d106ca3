// Ignore rules: the glob matcher on its own, then the whole walk compared
// with what real git includes for the same tree and ignore files.
#include <algorithm>
#include <catch2/catch.hpp>
#include <map>
#include <random>
#include <set>

#include "helpers.hpp"
#include "lib/snapshot/ignore.hpp"
#include "lib/util/process.hpp"

using namespace amlrun;
namespace fs = std::filesystem;
using namespace snapshot_test;
using snapshot::glob_match;

TEST_CASE("glob_match follows git's wildmatch rules", "[snapshot][ignore]") {
  struct Case {
    const char* pattern;
    const char* text;
    bool pathname;
    bool expected;
  };
  // Several of these come from the cases git documents for wildmatch.
  const Case cases[] = {
      {"foo", "foo", true, true},
      {"foo", "bar", true, false},
      {"", "", true, true},
      {"???", "foo", true, true},
      {"??", "foo", true, false},
      {"*", "foo", true, true},
      {"f*", "foo", true, true},
      {"*f", "foo", true, false},
      {"*foo*", "foo", true, true},
      {"*ob*a*r*", "foobar", true, true},
      {"*ab", "aaaaaaabababab", true, true},
      {"foo\\*", "foo*", true, true},
      {"foo\\*bar", "foobar", true, false},
      {"f\\\\oo", "f\\oo", true, true},
      {"*[al]?", "ball", true, true},
      {"[ten]", "ten", true, false},
      {"**[!te]", "ten", true, true},
      {"**[!ten]", "ten", true, false},
      {"t[a-g]n", "ten", true, true},
      {"t[!a-g]n", "ten", true, false},
      {"t[!a-g]n", "ton", true, true},
      {"t[^a-g]n", "ton", true, true},
      {"a[]]b", "a]b", true, true},
      {"a[]-]b", "a-b", true, true},
      {"a[]-]b", "a]b", true, true},
      {"a[]-]b", "aab", true, false},
      {"a[]a-]b", "aab", true, true},
      {"]", "]", true, true},
      {"foo*bar", "foo/baz/bar", true, false},
      {"foo**bar", "foo/baz/bar", true, false},
      {"foo**bar", "foobazbar", true, true},
      {"foo/**/bar", "foo/baz/bar", true, true},
      {"foo/**/**/bar", "foo/baz/bar", true, true},
      {"foo/**/bar", "foo/b/a/z/bar", true, true},
      {"foo/**/bar", "foo/bar", true, true},
      {"foo/**/**/bar", "foo/bar", true, true},
      {"foo?bar", "foo/bar", true, false},
      {"foo[/]bar", "foo/bar", true, false},
      {"foo[^a-z]bar", "foo/bar", true, false},
      {"f[^eiu][^eiu][^eiu][^eiu][^eiu]r", "f/uc/r", true, false},
      {"*/foo", "bar/foo", true, true},
      {"**/bar*", "deep/foo/bar/baz", true, false},
      {"**/bar/*", "deep/foo/bar/baz", true, true},
      {"**/bar/*", "deep/foo/bar/baz/", true, false},
      {"**/bar/**", "deep/foo/bar/baz/", true, true},
      {"**/bar/*", "deep/foo/bar", true, false},
      {"**/bar/**", "deep/foo/bar/", true, true},
      {"**/bar**", "foo/bar/baz", true, false},
      {"*/bar/**", "deep/foo/bar/baz/x", true, false},
      {"**/bar/*/*", "deep/foo/bar/baz/x", true, true},
      {"a/**/b", "a/b", true, true},
      {"**/x", "x", true, true},
      {"**/x", "a/b/x", true, true},
      {"x/**", "x", true, false},
      {"x/**", "x/a/b", true, true},
      {"[[:alpha:]][[:digit:]][[:upper:]]", "a1B", true, true},
      {"[[:digit:][:upper:][:space:]]", "a", true, false},
      {"[[:digit:][:upper:][:space:]]", "A", true, true},
      {"[[:digit:][:upper:][:space:]]", "1", true, true},
      {"[[:digit:][:upper:][:spaci:]]", "1", true, false},
      {"[[:space:]]", " ", true, true},
      {"[[:xdigit:]]", "5", true, true},
      {"[[:xdigit:]]", "f", true, true},
      {"[[:xdigit:]]", "g", true, false},
      {"[a-c", "a", true, false},
      {"*[a-c", "xa", true, false},
      {"[z-a]", "m", true, false},
      {"a\\", "a", true, false},
      {"*.o", "dir/x.o", false, true},
      {"*.o", "dir/x.o", true, false},
      {"-*-*-*-*-*-*-12-*-*-*-m-*-*-*", "-adobe-courier-bold-o-normal--12-120-75-75-m-70-iso8859-1",
       true, true},
      {"-*-*-*-*-*-*-12-*-*-*-m-*-*-*", "-adobe-courier-bold-o-normal--12-120-75-75-X-70-iso8859-1",
       true, false},
      {"**/*a*b*g*n*t", "abcd/abcdefg/abcdefghijk/abcdefghijklmnop.txt", true, true},
      {"**/*a*b*g*n*t", "abcd/abcdefg/abcdefghijk/abcdefghijklmnop.txtz", true, false},
      {"*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b",
       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", true, false},
  };
  for (const Case& c : cases) {
    INFO("pattern '" << c.pattern << "' text '" << c.text << "' pathname " << c.pathname);
    CHECK(glob_match(c.pattern, c.text, c.pathname) == c.expected);
  }
}

TEST_CASE("IgnoreFile: last matching line wins, anchoring, directory-only", "[snapshot][ignore]") {
  snapshot::IgnoreFile file("", "*.log\n!keep.log\n/top\nbuild/\n# *.md\n\\#x\n");
  CHECK(file.match("a.log", false) == true);
  CHECK(file.match("dir/a.log", false) == true);
  CHECK(file.match("dir/keep.log", false) == false);
  CHECK(file.match("top", false) == true);
  CHECK(file.match("dir/top", false) == std::nullopt);
  CHECK(file.match("build", true) == true);
  CHECK(file.match("build", false) == std::nullopt);
  CHECK(file.match("x.md", false) == std::nullopt);
  CHECK(file.match("#x", false) == true);

  snapshot::IgnoreFile nested("sub/dir", "/x\ny/z\n");
  CHECK(nested.match("sub/dir/x", false) == true);
  CHECK(nested.match("x", false) == std::nullopt);
  CHECK(nested.match("sub/dir/y/z", false) == true);
  CHECK(nested.match("sub/dir/a/y/z", false) == std::nullopt);
}

namespace {

// The tree every git comparison runs on: odd names included.
const std::vector<std::string> k_tree = {
    "a.txt",
    "a.log",
    "b.log",
    "c.md",
    ".hidden",
    "#hash",
    "!bang",
    " space",
    "trail ",
    "x[1].txt",
    "star*name",
    "back\\slash",
    "Upper.TXT",
    "abcdef",
    "data.txt",
    "e.txt",
    "build/out.o",
    "build/keep.txt",
    "build/sub/deep.o",
    "build/sub/x.a",
    "src/main.py",
    "src/util.py",
    "src/build/gen.py",
    "src/data/x.csv",
    "src/data/y.csv",
    "src/data/nested/z.csv",
    "src/node_modules/m.js",
    "src/e.txt/inner",
    "docs/readme.md",
    "docs/img/logo.png",
    "docs/img/build/thing",
    "docs/build/out.html",
    "foo/bar",
    "foo/baz/bar",
    "foo/x/y/bar",
    "foox/y/bar",
    "a/b/c/foo/bar",
    "a/bar",
    "logs/today.log",
    "logs/keep/important.log",
    "logs/keep/other.txt",
    "deep/a/b/c/d/e.txt",
    "deep/x.log",
    "deep/a/x.log",
    "node_modules/pkg/index.js",
    "abc/def/ghi.txt",
    "abc/x",
    "data/train/1.jpg",
    "data/val/2.jpg",
};

struct GitCase {
  std::string name;
  std::map<std::string, std::string> ignore_files;  // path -> content
};

std::vector<GitCase> handwritten_cases() {
  return {
      {"extension", {{".gitignore", "*.log\n"}}},
      {"negation", {{".gitignore", "*.log\n!b.log\n"}}},
      {"directory only", {{".gitignore", "build/\n"}}},
      {"anchored", {{".gitignore", "/build\n"}}},
      {"any depth", {{".gitignore", "build\n"}}},
      {"anchored by middle slash", {{".gitignore", "src/build\n"}}},
      {"leading double star", {{".gitignore", "**/build\n"}}},
      {"trailing double star", {{".gitignore", "build/**\n"}}},
      {"trailing double star then re-include", {{".gitignore", "build/**\n!build/keep.txt\n"}}},
      {"middle double star", {{".gitignore", "foo/**/bar\n"}}},
      {"leading double star path", {{".gitignore", "**/foo/bar\n"}}},
      {"middle double star zero dirs", {{".gitignore", "a/**/bar\n"}}},
      {"class", {{".gitignore", "*.[oa]\n"}}},
      {"negated class", {{".gitignore", "*.[!o]\n"}}},
      {"escaped brackets", {{".gitignore", "x\\[1\\].txt\n"}}},
      {"escaped hash", {{".gitignore", "\\#hash\n"}}},
      {"escaped bang", {{".gitignore", "\\!bang\n"}}},
      {"escaped leading space", {{".gitignore", "\\ space\n"}}},
      {"escaped trailing space", {{".gitignore", "trail\\ \n"}}},
      {"trailing spaces trimmed", {{".gitignore", "trail \na.txt   \n"}}},
      {"comments and blanks", {{".gitignore", "# comment\n\n   \n*.md\n#*.txt\n"}}},
      {"cannot re-include below an excluded dir", {{".gitignore", "data/\n!data/train/\n"}}},
      {"re-include a dir of an excluded dir's content", {{".gitignore", "data/*\n!data/train/\n"}}},
      {"whitelist", {{".gitignore", "*\n!*/\n!*.py\n"}}},
      {"only src", {{".gitignore", "/*\n!/src\n"}}},
      {"re-include one csv", {{".gitignore", "src/data/*.csv\n!src/data/y.csv\n"}}},
      {"question mark", {{".gitignore", "?.txt\n"}}},
      {"range", {{".gitignore", "[a-c].*\n"}}},
      {"posix class", {{".gitignore", "[[:upper:]]*\n"}}},
      {"prefix star", {{".gitignore", "abc*\n"}}},
      {"two segments", {{".gitignore", "abc/def\n"}}},
      {"double star then name", {{".gitignore", "deep/**/*.txt\n"}}},
      {"node_modules", {{".gitignore", "node_modules/\n"}}},
      {"all directories", {{".gitignore", "*/\n"}}},
      {"everything", {{".gitignore", "**\n"}}},
      {"anchored double star", {{".gitignore", "/**/x.log\n"}}},
      {"logs but keep", {{".gitignore", "logs/*\n!logs/keep/\n"}}},
      {"star star after literal head", {{".gitignore", "foo**/bar\n"}}},
      {"case sensitive", {{".gitignore", "*.LOG\n*.txt\n"}}},
      {"dir-only anchored", {{".gitignore", "deep/a/\n"}}},
      {"dir-only on a file name", {{".gitignore", "e.txt/\n"}}},
      {"escaped star", {{".gitignore", "star\\*name\n"}}},
      {"escaped backslash", {{".gitignore", "back\\\\slash\n"}}},
      {"negated range start", {{".gitignore", "[!a-z]*\n"}}},
      {"malformed class", {{".gitignore", "*[\n"}}},
      {"reversed range", {{".gitignore", "[z-a]*\n"}}},
      {"logs re-included by double star", {{".gitignore", "**/*.log\n!logs/**\n"}}},
      {"middle double star anchored", {{".gitignore", "a/b/**/bar\n"}}},
      {"dir-only double star", {{".gitignore", "src/**/\n"}}},
      {"order matters", {{".gitignore", "!*.py\n*\n"}}},
      {"direct subdirectories", {{".gitignore", "src/*/\n"}}},
      {"star slash", {{".gitignore", "*/*.csv\n"}}},
      {"star in the middle", {{".gitignore", "docs/*/build\n"}}},
      {"CRLF", {{".gitignore", "*.log\r\n*.md\r\n"}}},
      {"no final newline", {{".gitignore", "*.md\n*.log"}}},
      {"ignores itself", {{".gitignore", ".gitignore\n.hidden\n"}}},
      {"bang alone and slash alone", {{".gitignore", "!\n/\n*.md\n"}}},
      {"nested re-include", {{".gitignore", "*.csv\n"}, {"src/data/.gitignore", "!y.csv\n"}}},
      {"nested deeper wins", {{".gitignore", "!*.o\n"}, {"build/.gitignore", "*.o\n"}}},
      {"nested anchored", {{"docs/.gitignore", "/img\n"}}},
      {"nested unanchored", {{"docs/.gitignore", "build\n"}}},
      {"nested cannot re-include excluded parent",
       {{".gitignore", "src/data/\n"}, {"src/data/.gitignore", "!*\n"}}},
      {"nested negation over parent rule",
       {{".gitignore", "*.txt\n"}, {"logs/.gitignore", "!*.txt\n"}}},
      {"nested path pattern", {{"src/.gitignore", "data/nested\n"}}},
      {"nested double star", {{"deep/.gitignore", "**/x.log\n"}}},
      {"nested ignore file ignored by parent",
       {{".gitignore", "docs/.gitignore\n"}, {"docs/.gitignore", "*\n"}}},
  };
}

// Random patterns built from pieces that exercise every feature.
std::vector<GitCase> generated_cases(std::size_t count) {
  const std::vector<std::string> pieces = {"*",     "**",    "?",   "a",     "b*",    "[a-c]",
                                           "[!a]*", "build", "src", "*.log", "data",  "foo",
                                           "bar",   "*.py",  "x*",  "d?ep",  "*.t?t", "keep"};
  std::mt19937 random(20240611);  // fixed: the same cases every run
  auto pick = [&](std::size_t n) {
    return std::uniform_int_distribution<std::size_t>(0, n - 1)(random);
  };
  std::vector<GitCase> cases;
  for (std::size_t i = 0; i < count; ++i) {
    std::string text;
    std::size_t lines = 1 + pick(4);
    for (std::size_t line = 0; line < lines; ++line) {
      std::string pattern;
      if (pick(4) == 0) pattern += '!';
      if (pick(4) == 0) pattern += '/';
      std::size_t segments = 1 + pick(3);
      for (std::size_t s = 0; s < segments; ++s) {
        if (s > 0) pattern += '/';
        pattern += pieces[pick(pieces.size())];
      }
      if (pick(4) == 0) pattern += '/';
      text += pattern + "\n";
    }
    std::string where = pick(3) == 0 ? "src/.gitignore" : ".gitignore";
    cases.push_back({"generated " + std::to_string(i) + ": " + text, {{where, text}}});
  }
  return cases;
}

std::set<std::string> git_included_files(const fs::path& repo) {
  util::SpawnOptions spawn;
  spawn.argv = {"git",      "-c",       "core.excludesFile=/dev/null",
                "ls-files", "--others", "--exclude-standard",
                "-z"};
  spawn.cwd = repo;
  auto result = util::run_capture(spawn);
  REQUIRE(result.exit_code == 0);
  std::set<std::string> files;
  std::size_t start = 0;
  while (start < result.out.size()) {
    std::size_t end = result.out.find('\0', start);
    files.insert(result.out.substr(start, end - start));
    start = end + 1;
  }
  return files;
}

}  // namespace

TEST_CASE("the walk includes exactly the files git does", "[snapshot][ignore][git]") {
  if (!util::find_executable("git")) {
    WARN("git is not installed; skipping the comparison with git");
    return;
  }
  Workspace workspace;
  fs::path repo = workspace.source;
  util::SpawnOptions init;
  init.argv = {"git", "init", "-q", repo.string()};
  REQUIRE(util::run_capture(init).exit_code == 0);
  for (const auto& path : k_tree) write_file(repo / path, "content of " + path);

  auto cases = handwritten_cases();
  auto generated = generated_cases(250);
  cases.insert(cases.end(), generated.begin(), generated.end());
  std::size_t compared = 0;
  for (const GitCase& git_case : cases) {
    // Reset every ignore file, then write this case's.
    for (const auto& item : fs::recursive_directory_iterator(repo)) {
      if (item.path().filename() == ".gitignore") fs::remove(item.path());
    }
    for (const auto& [path, content] : git_case.ignore_files) write_file(repo / path, content);

    std::set<std::string> expected = git_included_files(repo);
    auto snapshot = workspace.take();
    std::set<std::string> actual;
    for (const auto& entry : snapshot::read_manifest(workspace.store, snapshot.id).entries) {
      if (entry.type != snapshot::EntryType::directory) actual.insert(entry.path);
    }
    INFO("case: " << git_case.name);
    CHECK(actual == expected);
    ++compared;
  }
  CHECK(compared == cases.size());
}

TEST_CASE(".amlignore replaces .gitignore in its directory", "[snapshot][ignore]") {
  Workspace workspace;
  write_file(workspace.source / ".gitignore", "*.log\n");
  write_file(workspace.source / ".amlignore", "*.csv\n");
  write_file(workspace.source / "a.log", "log");
  write_file(workspace.source / "b.csv", "csv");
  write_file(workspace.source / "sub/.gitignore", "*.txt\n");
  write_file(workspace.source / "sub/c.txt", "txt");
  write_file(workspace.source / "sub/d.csv", "csv");
  write_file(workspace.source / "sub/e.log", "log");
  auto snapshot = workspace.take();
  // The root uses .amlignore (not .gitignore); sub/ has only a .gitignore,
  // which applies there, on top of the root's .amlignore.
  CHECK(workspace.paths(snapshot.id) == std::vector<std::string>{".amlignore", ".gitignore",
                                                                 "a.log", "sub", "sub/.gitignore",
                                                                 "sub/e.log"});
}
