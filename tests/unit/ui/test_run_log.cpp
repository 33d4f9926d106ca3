#include <unistd.h>

#include <catch2/catch.hpp>

#include "../test_support.hpp"
#include "lib/ui/run_log.hpp"

using namespace amlrun;
using unit_test::TempDir;

TEST_CASE("a rank log is read in pieces from the first root that has it") {
  TempDir first, second;
  second.write("artifacts/logs/user_logs/std_log_rank_1.txt", "line 1\nline 2\n");
  std::vector<std::filesystem::path> roots = {first.path, second.path};
  auto whole = ui::read_rank_log(roots, 1, 0, 1024);
  CHECK(whole.found);
  CHECK(whole.size == 14);
  CHECK(whole.bytes == "line 1\nline 2\n");
  auto rest = ui::read_rank_log(roots, 1, 7, 3);
  CHECK(rest.offset == 7);
  CHECK(rest.bytes == "lin");
  CHECK(ui::read_rank_log(roots, 1, 14, 1024).bytes.empty());
  CHECK_FALSE(ui::read_rank_log(roots, 0, 0, 1024).found);
}

TEST_CASE("a UTF-8 sequence cut by the end of a piece is left for the next piece") {
  TempDir dir;
  dir.write("artifacts/logs/user_logs/std_log_rank_0.txt",
            "ab\xE2\x82\xAC"
            "c");
  std::vector<std::filesystem::path> roots = {dir.path};
  CHECK(ui::read_rank_log(roots, 0, 0, 3).bytes == "ab");
  CHECK(ui::read_rank_log(roots, 0, 0, 4).bytes == "ab");
  CHECK(ui::read_rank_log(roots, 0, 0, 5).bytes == "ab\xE2\x82\xAC");
  CHECK(ui::read_rank_log(roots, 0, 2, 10).bytes ==
        "\xE2\x82\xAC"
        "c");
}

TEST_CASE("a rank log replaced by a link is not followed") {
  TempDir dir, outside;
  outside.write("secret.txt", "secret\n");
  std::filesystem::create_directories(dir.path / "artifacts/logs/user_logs");
  std::filesystem::create_symlink(outside.path / "secret.txt",
                                  dir.path / "artifacts/logs/user_logs/std_log_rank_0.txt");
  auto piece = ui::read_rank_log({dir.path}, 0, 0, 1024);
  CHECK_FALSE(piece.found);
  CHECK(piece.bytes.empty());
}

TEST_CASE("the tail of a large log starts at a line") {
  TempDir dir;
  std::string text;
  for (int i = 0; i < 1000; ++i) text += "line " + std::to_string(i) + "\n";
  dir.write("artifacts/logs/user_logs/std_log_rank_0.txt", text);
  std::vector<std::filesystem::path> roots = {dir.path};
  CHECK(ui::tail_offset(roots, 0, text.size(), 1 << 20) == 0);
  auto start = ui::tail_offset(roots, 0, text.size(), 100);
  CHECK(start > text.size() - 100);
  CHECK(text[start - 1] == '\n');
  CHECK(text.substr(start, 9) == "line 989\n");
}
