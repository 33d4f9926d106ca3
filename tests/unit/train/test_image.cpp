#include <catch2/catch.hpp>

#include <chrono>
#include <string_view>

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

namespace {

std::uint32_t crc32(std::string_view bytes) {
  std::uint32_t crc = 0xFFFFFFFFu;
  for (char byte : bytes) {
    crc ^= static_cast<unsigned char>(byte);
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
  }
  return ~crc;
}

void put_big_endian(std::string& bytes, std::size_t at, std::uint32_t value, int size) {
  for (int i = 0; i < size; ++i) {
    bytes[at + i] = static_cast<char>(value >> (8 * (size - 1 - i)));
  }
}

// A real PNG of a few dozen bytes whose IHDR claims width × height (with a
// valid CRC, so libpng believes it).
std::string png_claiming(std::uint32_t width, std::uint32_t height) {
  std::string bytes = encode_png(pattern_image(1, 1, 3));
  // Signature (8), length (4), "IHDR" (4), width (4), height (4), 5 more
  // bytes of data, then the CRC of type and data.
  put_big_endian(bytes, 16, width, 4);
  put_big_endian(bytes, 20, height, 4);
  put_big_endian(bytes, 29, crc32(std::string_view(bytes).substr(12, 17)), 4);
  return bytes;
}

// A real JPEG whose frame header (SOF0) claims width × height.
std::string jpeg_claiming(std::uint16_t width, std::uint16_t height) {
  std::string bytes = encode_jpeg(pattern_image(8, 8, 3), 90);
  std::size_t sof = bytes.find("\xFF\xC0");
  REQUIRE(sof != std::string::npos);
  // Marker (2), length (2), precision (1), height (2), width (2).
  put_big_endian(bytes, sof + 5, height, 2);
  put_big_endian(bytes, sof + 7, width, 2);
  return bytes;
}

double seconds_to_decode(const std::string& bytes, const std::string& name, std::string& message) {
  auto start = std::chrono::steady_clock::now();
  message = message_of([&] { decode_image(bytes, name); });
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

TEST_CASE("images whose header claims too many pixels are refused before decoding", "[image]") {
  std::string png = png_claiming(100000, 100000);
  REQUIRE(png.size() < 100);
  std::string message;
  // Refused from the header: no gigabyte buffer is allocated and filled.
  CHECK(seconds_to_decode(png, "huge.png", message) < 1.0);
  CHECK(message ==
        "huge.png: image too large (100000x100000 pixels; at most 64000000 are decoded)");
  CHECK(seconds_to_decode(png_claiming(10000, 6401), "wide.png", message) < 1.0);
  CHECK(message == "wide.png: image too large (10000x6401 pixels; at most 64000000 are decoded)");
  CHECK(seconds_to_decode(jpeg_claiming(65000, 65000), "huge.jpg", message) < 1.0);
  CHECK(message == "huge.jpg: image too large (65000x65000 pixels; at most 64000000 are decoded)");
  CHECK(seconds_to_decode(jpeg_claiming(10000, 6401), "wide.jpg", message) < 1.0);
  CHECK(message == "wide.jpg: image too large (10000x6401 pixels; at most 64000000 are decoded)");
  CHECK_THROWS_AS(decode_image(png, "huge.png"), DecodeError);
  // The patched files are otherwise intact: at a size within the limit,
  // decoding gets past the header and fails on the missing pixel data.
  CHECK(message_of([&] {
          decode_image(png_claiming(2, 2), "small.png");
        }).rfind("small.png: corrupt PNG (", 0) == 0);
}
