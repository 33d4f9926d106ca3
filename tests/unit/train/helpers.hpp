#pragma once
// Shared by the tests of lib/train: small labelled image folders written
// with our own encoders (temporary folders and error texts come from
// test_support.hpp).
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "../test_support.hpp"
#include "lib/train/image.hpp"

namespace train_test {

namespace fs = std::filesystem;

using unit_test::message_of;
using unit_test::TempDir;

inline void write_bytes(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A width × height image whose pixel values follow a simple pattern, so
// transforms can be checked against hand-computed values.
inline amlrun::train::Image pattern_image(int width, int height, int channels, int seed = 0) {
  amlrun::train::Image image;
  image.width = width;
  image.height = height;
  image.channels = channels;
  image.pixels.resize(static_cast<std::size_t>(width) * height * channels);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      for (int c = 0; c < channels; ++c) {
        image.pixels[(static_cast<std::size_t>(y) * width + x) * channels + c] =
            static_cast<std::uint8_t>((x * 7 + y * 13 + c * 50 + seed * 31) % 256);
      }
    }
  }
  return image;
}

// root/<class>/<n>.png for each class, `per_class` images each.
inline void write_image_folder(const fs::path& root, const std::vector<std::string>& classes,
                               int per_class, int size = 12) {
  int seed = 0;
  for (const std::string& name : classes) {
    for (int i = 0; i < per_class; ++i) {
      write_bytes(root / name / (std::to_string(i) + ".png"),
                  amlrun::train::encode_png(pattern_image(size, size, 3, seed++)));
    }
  }
}

}  // namespace train_test
