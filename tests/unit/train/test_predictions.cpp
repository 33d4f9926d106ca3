// predict's inputs, top-k and output formats (lib/train/predictions), byte
// for byte.
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>

#include "../test_support.hpp"
#include "lib/train/predictions.hpp"
#include "lib/util/error.hpp"

using namespace amlrun::train;
namespace fs = std::filesystem;

namespace {

std::string message_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const amlrun::util::InputError& error) {
    return error.what();
  }
  return "";
}

void touch(const fs::path& path) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << "x";
}

}  // namespace

TEST_CASE("a folder's images are listed recursively, sorted, hidden ones skipped",
          "[predictions]") {
  unit_test::TempDir dir;
  const fs::path images = dir.path / "images";
  for (const char* name :
       {"b.png", "a.JPG", "sub/c.jpeg", "sub/.d.png", ".hidden/e.png", "notes.txt", "z.Png"}) {
    touch(images / name);
  }
  std::vector<std::string> shown;
  for (const PredictInput& input : list_predict_inputs({images})) shown.push_back(input.shown);
  CHECK(shown == std::vector<std::string>{"a.JPG", "b.png", "sub/c.jpeg", "z.Png"});

  // Several arguments: each row names its image as the argument plus the path below it.
  touch(dir.path / "single.bin");
  std::vector<PredictInput> mixed = list_predict_inputs({dir.path / "single.bin", images / "sub"});
  REQUIRE(mixed.size() == 2);
  CHECK(mixed[0].shown == (dir.path / "single.bin").string());
  CHECK(mixed[1].shown == (images / "sub" / "c.jpeg").string());
  CHECK(mixed[1].path == images / "sub" / "c.jpeg");

  CHECK(message_of([&] { list_predict_inputs({dir.path / "nope"}); }) ==
        "--data " + (dir.path / "nope").string() + ": no such file or folder");
  fs::create_directories(dir.path / "empty" / "deeper");
  CHECK(message_of([&] { list_predict_inputs({dir.path / "empty"}); }) ==
        "--data " + (dir.path / "empty").string() +
            ": no .jpg, .jpeg or .png file in the folder or below it");
}

TEST_CASE("the output format follows the name", "[predictions]") {
  CHECK(predict_format("out.csv") == PredictFormat::csv);
  CHECK(predict_format("a/out.jsonl") == PredictFormat::jsonl);
  CHECK(message_of([] { predict_format("out.json"); }) ==
        "--output out.json: the name must end in .csv or .jsonl (the format is chosen by it)");
}

TEST_CASE("top-k is the softmax's best classes, ties to the lower index", "[predictions]") {
  const float logits[] = {1.0f, 3.0f, 3.0f, -1000.0f, 9.0f};
  auto top = top_k_probabilities(logits, 5, 3);
  REQUIRE(top.size() == 3);
  CHECK(top[0].first == 4);
  CHECK(top[0].second ==
        Approx(std::exp(9.0) / (std::exp(1.0) + 2 * std::exp(3.0) + std::exp(9.0))));
  CHECK(top[1].first == 1);  // 1 and 2 tie: the lower index first, as torch.topk
  CHECK(top[2].first == 2);
  const float even[] = {0.0f, 0.0f};
  auto halves = top_k_probabilities(even, 2, 10);  // k above the class count
  REQUIRE(halves.size() == 2);
  CHECK(halves[0].second == Approx(0.5));
  CHECK(halves[1].second == Approx(0.5));
}

TEST_CASE("CSV rows quote what needs quoting and leave unreadable images' fields empty",
          "[predictions]") {
  CHECK(csv_header(2) == "path,label_1,probability_1,label_2,probability_2,error\n");
  Prediction plain{"a/b.png", {{"Bag", 0.9}, {"T-shirt/top", 0.0999999}}, ""};
  CHECK(csv_row(plain, 2) == "a/b.png,Bag,0.900000,T-shirt/top,0.100000,\n");
  Prediction odd{"x, \"y\"\n.png", {{" padded", 1.0}}, ""};
  CHECK(csv_row(odd, 2) == "\"x, \"\"y\"\"\n.png\",\" padded\",1.000000,,,\n");
  Prediction broken{"c.jpg", {}, "empty file"};
  CHECK(csv_row(broken, 2) == "c.jpg,,,,,empty file\n");
}

TEST_CASE("JSON Lines rows, with invalid UTF-8 replaced", "[predictions]") {
  Prediction plain{"a/b.png", {{"Bag", 0.9}, {"Coat", 0.1}}, ""};
  CHECK(jsonl_row(plain) ==
        "{\"path\":\"a/b.png\",\"predictions\":[{\"label\":\"Bag\",\"probability\":0.900000},"
        "{\"label\":\"Coat\",\"probability\":0.100000}]}\n");
  Prediction broken{"bad\xff\"</script>.png", {}, "not a JPEG or PNG file"};
  CHECK(jsonl_row(broken) ==
        "{\"path\":\"bad\xef\xbf\xbd\\\"</script>.png\",\"error\":\"not a JPEG or PNG file\"}\n");
}
