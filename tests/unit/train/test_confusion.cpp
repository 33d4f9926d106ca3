#include <catch2/catch.hpp>

#include "lib/train/confusion.hpp"

using amlrun::train::ConfusionMatrix;

TEST_CASE("the confusion matrix counts and lays out rows per true class", "[confusion]") {
  ConfusionMatrix matrix({"cat", "dog"});
  matrix.add(0, 0);
  matrix.add(0, 1);
  matrix.add(1, 1);
  CHECK(matrix.total() == 3);
  CHECK(matrix.correct() == 2);
  CHECK(matrix.count(0, 1) == 1);
  CHECK(matrix.lines() ==
        std::vector<std::string>{"confusion matrix (rows: true class, columns: predicted class)",
                                 "       0 1", "0 cat  1 1", "1 dog  0 1"});
}

TEST_CASE("control characters in class names are shown escaped, so rows stay rows", "[confusion]") {
  // Folder names may hold newlines and escape sequences.
  ConfusionMatrix matrix({"a\nb", "\x1b[2Jc"});
  matrix.add(0, 0);
  matrix.add(1, 0);
  std::vector<std::string> lines = matrix.lines();
  REQUIRE(lines.size() == 4);
  CHECK(lines[1] == "            0 1");
  CHECK(lines[2] == "0 a\\nb      1 0");
  CHECK(lines[3] == "1 \\x1b[2Jc  1 0");
  for (const std::string& line : lines) {
    CHECK(line.find_first_of("\n\x1b") == std::string::npos);
  }
}
