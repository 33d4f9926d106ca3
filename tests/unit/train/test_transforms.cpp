#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "lib/train/transforms.hpp"
#include "tests/unit/train/helpers.hpp"

using namespace amlrun::train;
using namespace train_test;

namespace {
// The expected output value of channel c for a raw 8-bit value.
float normalised(float raw, int c) {
  return (raw / 255.0f - k_imagenet_normalization.mean[c]) / k_imagenet_normalization.std[c];
}
}  // namespace

TEST_CASE("random resized crop boxes stay inside the image with torchvision's bounds",
          "[transforms]") {
  for (std::uint64_t seed = 0; seed < 500; ++seed) {
    SampleRandom random(seed);
    CropBox box = random_resized_crop_box(64, 48, /*min_scale=*/0.08, random);
    INFO("seed " << seed);
    CHECK(box.left >= 0);
    CHECK(box.top >= 0);
    CHECK(box.left + box.width <= 64);
    CHECK(box.top + box.height <= 48);
    double area = box.width * box.height / (64.0 * 48.0);
    CHECK(area >= 0.08 * 0.9);  // rounding of w and h
    double ratio = box.width / box.height;
    CHECK(ratio >= 3.0 / 4.0 * 0.9);
    CHECK(ratio <= 4.0 / 3.0 * 1.1);
    CHECK(box.left == std::floor(box.left));  // integer boxes, as torchvision's
  }
}

TEST_CASE("a crop box is a function of the generator's seed", "[transforms]") {
  SampleRandom a(42);
  SampleRandom b(42);
  SampleRandom c(43);
  CropBox first = random_resized_crop_box(100, 100, 0.08, a);
  CropBox same = random_resized_crop_box(100, 100, 0.08, b);
  CropBox other = random_resized_crop_box(100, 100, 0.08, c);
  CHECK(first.left == same.left);
  CHECK(first.width == same.width);
  CHECK((first.left != other.left || first.top != other.top || first.width != other.width));
}

TEST_CASE("with min scale 1 the crop covers the whole square image", "[transforms]") {
  SampleRandom random(7);
  // Area 1 and a ratio other than 1 cannot fit in a square, so torchvision's
  // tries mostly fail; whichever path is taken the box is the full image or
  // a full-height/width strip.
  CropBox box = random_resized_crop_box(30, 30, 1.0, random);
  CHECK(box.width * box.height >= 30 * 30 * 0.75);
}

TEST_CASE("the evaluation box is Resize(size*256/224) then CenterCrop(size)", "[transforms]") {
  // 28×28 to 32: resized to 37×37, crop offset round(2.5) = 2 (Python rounds
  // half to even), box = 32 * 28/37 wide starting at 2 * 28/37.
  CropBox box = centre_crop_box(28, 28, 32);
  CHECK(box.left == Approx(2.0 * 28 / 37));
  CHECK(box.width == Approx(32.0 * 28 / 37));
  // 400×300 to 224: shorter side 300 → 256, longer 341; crop (341-224)/2 = 58.5 → 58.
  CropBox wide = centre_crop_box(400, 300, 224);
  CHECK(wide.top == Approx(16.0 * 300 / 256));
  CHECK(wide.height == Approx(224.0 * 300 / 256));
  CHECK(wide.left == Approx(58.0 * 400 / 341));
}

TEST_CASE("resampling the full image at its own size only normalises", "[transforms]") {
  Image image = pattern_image(6, 5, 3);
  std::vector<float> out(3 * 6 * 6);
  // A 6×5 image into a 6×6 output would stretch; use a square box instead.
  Image square = pattern_image(6, 6, 3);
  resample_normalized(square, CropBox{0, 0, 6, 6}, 6, /*flip=*/false, k_imagenet_normalization,
                      out.data());
  for (int c = 0; c < 3; ++c) {
    for (int y = 0; y < 6; ++y) {
      for (int x = 0; x < 6; ++x) {
        float raw = square.pixels[(y * 6 + x) * 3 + c];
        CHECK(out[c * 36 + y * 6 + x] == Approx(normalised(raw, c)).margin(1e-5));
      }
    }
  }
}

TEST_CASE("flip mirrors every row", "[transforms]") {
  Image square = pattern_image(8, 8, 3);
  std::vector<float> plain(3 * 64);
  std::vector<float> flipped(3 * 64);
  resample_normalized(square, CropBox{0, 0, 8, 8}, 8, false, k_imagenet_normalization,
                      plain.data());
  resample_normalized(square, CropBox{0, 0, 8, 8}, 8, true, k_imagenet_normalization,
                      flipped.data());
  for (int c = 0; c < 3; ++c) {
    for (int y = 0; y < 8; ++y) {
      for (int x = 0; x < 8; ++x) {
        CHECK(flipped[c * 64 + y * 8 + x] == plain[c * 64 + y * 8 + (7 - x)]);
      }
    }
  }
}

TEST_CASE("grey images fill all three planes, each with its own normalisation", "[transforms]") {
  Image grey = pattern_image(4, 4, 1);
  std::vector<float> out(3 * 16);
  resample_normalized(grey, CropBox{0, 0, 4, 4}, 4, false, k_imagenet_normalization, out.data());
  for (int c = 0; c < 3; ++c) {
    for (int i = 0; i < 16; ++i) {
      CHECK(out[c * 16 + i] == Approx(normalised(grey.pixels[i], c)).margin(1e-5));
    }
  }
}

TEST_CASE("shrinking averages like PIL's antialiased bilinear filter", "[transforms]") {
  // A 1-pixel checkerboard of 0 and 255 shrunk 4× must come out mid-grey; a
  // plain bilinear sample without antialiasing would hit 0 or 255.
  Image board;
  board.width = board.height = 16;
  board.channels = 1;
  for (int y = 0; y < 16; ++y) {
    for (int x = 0; x < 16; ++x) {
      board.pixels.push_back((x + y) % 2 == 0 ? 0 : 255);
    }
  }
  std::vector<float> out(3 * 16);
  resample_normalized(board, CropBox{0, 0, 16, 16}, 4, false, k_imagenet_normalization, out.data());
  for (int i = 0; i < 16; ++i) {
    CHECK(out[i] == Approx(normalised(127.5f, 0)).margin(0.05));
  }
}

TEST_CASE("upscaling interpolates between neighbours", "[transforms]") {
  Image two;
  two.width = 2;
  two.height = 1;
  two.channels = 1;
  two.pixels = {0, 200};
  std::vector<float> out(3 * 4 * 4);
  // Box of the whole 2×1 image into 4×4: columns sample at 0.25, 0.75, 1.25, 1.75.
  resample_normalized(two, CropBox{0, 0, 2, 1}, 4, false, k_imagenet_normalization, out.data());
  CHECK(out[0] == Approx(normalised(0, 0)).margin(1e-4));
  CHECK(out[1] == Approx(normalised(50, 0)).margin(1e-4));
  CHECK(out[2] == Approx(normalised(150, 0)).margin(1e-4));
  CHECK(out[3] == Approx(normalised(200, 0)).margin(1e-4));
}

TEST_CASE("the training transform is deterministic in its generator", "[transforms]") {
  Image image = pattern_image(40, 30, 3);
  std::vector<float> a(3 * 16 * 16);
  std::vector<float> b(3 * 16 * 16);
  std::vector<float> c(3 * 16 * 16);
  SampleRandom ra(derive_seed(1, RandomStream::augment, 0, 5));
  SampleRandom rb(derive_seed(1, RandomStream::augment, 0, 5));
  SampleRandom rc(derive_seed(1, RandomStream::augment, 1, 5));
  train_transform(image, 16, 0.08, ra, a.data());
  train_transform(image, 16, 0.08, rb, b.data());
  train_transform(image, 16, 0.08, rc, c.data());
  CHECK(a == b);
  CHECK(a != c);
}
