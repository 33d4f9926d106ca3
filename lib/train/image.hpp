#pragma once
// Decoding and encoding of the two image formats a labelled image folder may
// hold: JPEG (libjpeg-turbo) and PNG (libpng). No LibTorch here: decoding runs
// in the loader's native threads and this header stays cheap to include.
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace amlrun::train {

// Pixels row by row, channels interleaved (HWC), 8 bits per channel.
// Grey images keep one channel: a grey dataset cached in memory costs a third.
struct Image {
  int width = 0;
  int height = 0;
  int channels = 0;  // 1 (grey) or 3 (RGB)
  std::vector<std::uint8_t> pixels;

  std::size_t byte_size() const { return pixels.size(); }
};

enum class ImageFormat { jpeg, png, unknown };

// The most pixels decode_image decodes. Headers are checked before any pixel
// buffer is allocated: a 70-byte PNG may claim 100000 × 100000 pixels, which
// would otherwise cost gigabytes and tens of seconds before it failed.
// 64 megapixels (8000 × 8000, 192 MB as RGB) is far beyond what a classifier
// is trained on, and a few such images still fit in memory side by side.
inline constexpr std::uint64_t k_max_image_pixels = 64'000'000;

// Format by magic bytes, not by file name: a .jpg that is really a PNG loads.
ImageFormat sniff_image_format(std::string_view bytes);

// A file that is not a decodable JPEG or PNG: truncated, corrupt, or another
// format. The message names the file and what went wrong.
class DecodeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Decodes JPEG or PNG bytes. Colour images (including palette, 16-bit and
// alpha PNGs, and CMYK JPEGs) become 3-channel RGB, grey ones 1 channel; alpha
// is dropped as PIL's convert("RGB") does. An image whose header claims more
// than k_max_image_pixels is refused (DecodeError) before anything is
// allocated. `name` only appears in errors.
Image decode_image(std::string_view bytes, const std::string& name);

// Reads and decodes a file; throws DecodeError (also for unreadable files).
Image read_image(const std::filesystem::path& path);

// Encoders for tests, benchmarks and the Fashion-MNIST converter.
std::string encode_png(const Image& image);
std::string encode_jpeg(const Image& image, int quality);

// "libjpeg-turbo 2.1.5", "libpng 1.6.39": for config.json.
std::string jpeg_library_version();
std::string png_library_version();

}  // namespace amlrun::train
