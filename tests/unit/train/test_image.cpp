#include <catch2/catch.hpp>

#include "lib/train/image.hpp"
#include "tests/unit/train/helpers.hpp"

using namespace amlrun::train;
using namespace train_test;

TEST_CASE("PNG round trip keeps grey and colour pixels exactly", "[image]") {
  for (int channels : {1, 3}) {
    Image original = pattern_image(17, 9, channels);
    std::string bytes = encode_png(original);
    CHECK(sniff_image_format(bytes) == ImageFormat::png);
    Image decoded = decode_image(bytes, "x.png");
    CHECK(decoded.width == 17);
    CHECK(decoded.height == 9);
    CHECK(decoded.channels == channels);
    CHECK(decoded.pixels == original.pixels);
  }
}

TEST_CASE("JPEG round trip keeps size, channel count and approximate pixels", "[image]") {
  for (int channels : {1, 3}) {
    // A smooth image: JPEG at quality 95 reproduces it within a few levels.
    Image original;
    original.width = 32;
    original.height = 24;
    original.channels = channels;
    for (int y = 0; y < 24; ++y) {
      for (int x = 0; x < 32; ++x) {
        for (int c = 0; c < channels; ++c) {
          original.pixels.push_back(static_cast<std::uint8_t>(40 + x * 4 + y * 2 + c * 10));
        }
      }
    }
    std::string bytes = encode_jpeg(original, /*quality=*/95);
    CHECK(sniff_image_format(bytes) == ImageFormat::jpeg);
    Image decoded = decode_image(bytes, "x.jpg");
    REQUIRE(decoded.width == 32);
    REQUIRE(decoded.height == 24);
    REQUIRE(decoded.channels == channels);
    int worst = 0;
    for (std::size_t i = 0; i < original.pixels.size(); ++i) {
      worst = std::max(worst, std::abs(int(original.pixels[i]) - int(decoded.pixels[i])));
    }
    CHECK(worst <= 6);
  }
}

TEST_CASE("the format is taken from the bytes, not the file name", "[image]") {
  TempDir dir;
  Image original = pattern_image(5, 5, 3);
  write_bytes(dir.path / "really-a-png.jpg", encode_png(original));
  CHECK(read_image(dir.path / "really-a-png.jpg").pixels == original.pixels);
}

TEST_CASE("corrupt images raise DecodeError naming the file and the problem", "[image]") {
  std::string png = encode_png(pattern_image(20, 20, 3));
  std::string jpeg = encode_jpeg(pattern_image(20, 20, 3), 90);
  CHECK(message_of([&] { decode_image("", "a.png"); }) == "a.png: empty file");
  CHECK(message_of([&] { decode_image("GIF89a......", "b.gif"); }) ==
        "b.gif: not a JPEG or PNG image");
  CHECK(message_of([&] {
          decode_image(png.substr(0, 40), "c.png");
        }).rfind("c.png: corrupt PNG (", 0) == 0);
  CHECK(message_of([&] { decode_image(jpeg.substr(0, jpeg.size() / 2), "d.jpg"); }) ==
        "d.jpg: corrupt JPEG (Premature end of JPEG file)");
  CHECK_THROWS_AS(decode_image(png.substr(0, png.size() - 20), "e.png"), DecodeError);
  TempDir dir;
  CHECK(message_of([&] { read_image(dir.path / "missing.png"); }).find("missing.png") !=
        std::string::npos);
}

TEST_CASE("the library versions are named", "[image]") {
  CHECK(jpeg_library_version().rfind("libjpeg-turbo ", 0) == 0);
  CHECK(png_library_version().rfind("libpng 1.6", 0) == 0);
}
