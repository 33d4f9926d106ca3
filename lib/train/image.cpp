#include "lib/train/image.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csetjmp>
#include <cstdio>
#include <cstring>

// jpeglib.h needs size_t and FILE declared before it.
#include <jerror.h>
#include <jpeglib.h>
#include <png.h>

#include <fmt/format.h>

#include "lib/util/fs.hpp"

namespace amlrun::train {

ImageFormat sniff_image_format(std::string_view bytes) {
  if (bytes.size() >= 3 && static_cast<unsigned char>(bytes[0]) == 0xFF &&
      static_cast<unsigned char>(bytes[1]) == 0xD8 &&
      static_cast<unsigned char>(bytes[2]) == 0xFF) {
    return ImageFormat::jpeg;
  }
  static constexpr unsigned char k_png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (bytes.size() >= 8 && std::memcmp(bytes.data(), k_png_magic, 8) == 0) {
    return ImageFormat::png;
  }
  return ImageFormat::unknown;
}

namespace {

// Asked with the dimensions from the header, before any pixel buffer exists.
// Both factors are at most 2^32, so the product does not overflow.
bool too_large(std::uint64_t width, std::uint64_t height) {
  return width * height > k_max_image_pixels;
}

DecodeError too_large_error(std::uint64_t width, std::uint64_t height, const std::string& name) {
  return DecodeError(fmt::format("{}: image too large ({}x{} pixels; at most {} are decoded)", name,
                                 width, height, k_max_image_pixels));
}

// libjpeg reports fatal errors through error_exit, which must not return; we
// longjmp back to decode_jpeg. Only trivially destructible objects live between
// setjmp and the longjmp, so skipping destructors is safe.
struct JpegErrorManager {
  jpeg_error_mgr base;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void jpeg_error_exit(j_common_ptr info) {
  auto* manager = reinterpret_cast<JpegErrorManager*>(info->err);
  (*info->err->format_message)(info, manager->message);
  std::longjmp(manager->jump, 1);
}

// libjpeg only warns about a truncated file and fills the rest with grey; PIL
// (torchvision's loader) refuses such a file, so we make that one warning an
// error and the image is counted as corrupt. Other warnings (extraneous bytes
// before a marker) are silenced, as PIL accepts those files.
void jpeg_emit_message(j_common_ptr info, int level) {
  if (level < 0 && info->err->msg_code == JWRN_JPEG_EOF) {
    jpeg_error_exit(info);
  }
}

Image decode_jpeg(std::string_view bytes, const std::string& name) {
  jpeg_decompress_struct info;
  JpegErrorManager errors;
  info.err = jpeg_std_error(&errors.base);
  errors.base.error_exit = jpeg_error_exit;
  errors.base.emit_message = jpeg_emit_message;
  errors.message[0] = '\0';
  // Everything with a destructor is declared before setjmp: jumping back over
  // a later declaration would skip its destructor.
  Image image;
  std::vector<std::uint8_t> cmyk_row;
  if (setjmp(errors.jump) != 0) {
    std::string reason = errors.message;
    jpeg_destroy_decompress(&info);
    throw DecodeError(fmt::format("{}: corrupt JPEG ({})", name, reason));
  }
  jpeg_create_decompress(&info);
  jpeg_mem_src(&info, reinterpret_cast<const unsigned char*>(bytes.data()),
               static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&info, /*require_image=*/TRUE);
  if (too_large(info.image_width, info.image_height)) {
    const JDIMENSION width = info.image_width;
    const JDIMENSION height = info.image_height;
    jpeg_destroy_decompress(&info);
    throw too_large_error(width, height, name);
  }
  bool cmyk = info.jpeg_color_space == JCS_CMYK || info.jpeg_color_space == JCS_YCCK;
  bool grey = info.num_components == 1;
  info.out_color_space = cmyk ? JCS_CMYK : (grey ? JCS_GRAYSCALE : JCS_RGB);
  jpeg_start_decompress(&info);
  int width = static_cast<int>(info.output_width);
  int height = static_cast<int>(info.output_height);
  int components = info.output_components;
  image.width = width;
  image.height = height;
  image.channels = cmyk ? 3 : components;
  std::vector<std::uint8_t>& out = image.pixels;
  out.resize(static_cast<std::size_t>(width) * height * image.channels);
  cmyk_row.resize(cmyk ? static_cast<std::size_t>(width) * 4 : 0);
  while (info.output_scanline < info.output_height) {
    std::size_t row = info.output_scanline;
    if (cmyk) {
      JSAMPROW pointer = cmyk_row.data();
      jpeg_read_scanlines(&info, &pointer, 1);
      // Adobe writes CMYK inverted (as almost every CMYK JPEG is); PIL's
      // conversion is then R = C * K / 255.
      std::uint8_t* dest = out.data() + row * width * 3;
      for (int x = 0; x < width; ++x) {
        unsigned k = cmyk_row[x * 4 + 3];
        for (int c = 0; c < 3; ++c) {
          dest[x * 3 + c] = static_cast<std::uint8_t>(cmyk_row[x * 4 + c] * k / 255);
        }
      }
    } else {
      JSAMPROW pointer = out.data() + row * width * components;
      jpeg_read_scanlines(&info, &pointer, 1);
    }
  }
  jpeg_finish_decompress(&info);
  jpeg_destroy_decompress(&info);
  return image;
}

Image decode_png(std::string_view bytes, const std::string& name) {
  png_image png;
  std::memset(&png, 0, sizeof(png));
  png.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&png, bytes.data(), bytes.size())) {
    std::string reason = png.message;
    png_image_free(&png);
    throw DecodeError(fmt::format("{}: corrupt PNG ({})", name, reason));
  }
  if (too_large(png.width, png.height)) {
    const png_uint_32 width = png.width;
    const png_uint_32 height = png.height;
    png_image_free(&png);
    throw too_large_error(width, height, name);
  }
  bool colour = (png.format & PNG_FORMAT_FLAG_COLOR) != 0;
  bool alpha = (png.format & PNG_FORMAT_FLAG_ALPHA) != 0;
  // Alpha is read and then dropped rather than composited, because PIL's
  // convert("RGB") (what torchvision's ImageFolder does) drops it.
  png.format = colour ? (alpha ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB)
                      : (alpha ? PNG_FORMAT_GA : PNG_FORMAT_GRAY);
  int read_channels = static_cast<int>(PNG_IMAGE_PIXEL_CHANNELS(png.format));
  // Computed in 64 bits: PNG_IMAGE_SIZE multiplies in png_uint_32. The size
  // is bounded by the check above.
  std::vector<std::uint8_t> buffer(static_cast<std::size_t>(png.width) * png.height *
                                   static_cast<std::size_t>(read_channels));
  if (!png_image_finish_read(&png, /*background=*/nullptr, buffer.data(), /*row_stride=*/0,
                             /*colormap=*/nullptr)) {
    std::string reason = png.message;
    png_image_free(&png);
    throw DecodeError(fmt::format("{}: corrupt PNG ({})", name, reason));
  }
  Image image;
  image.width = static_cast<int>(png.width);
  image.height = static_cast<int>(png.height);
  image.channels = colour ? 3 : 1;
  if (!alpha) {
    image.pixels = std::move(buffer);
    return image;
  }
  std::size_t pixels = static_cast<std::size_t>(image.width) * image.height;
  image.pixels.resize(pixels * image.channels);
  for (std::size_t i = 0; i < pixels; ++i) {
    for (int c = 0; c < image.channels; ++c) {
      image.pixels[i * image.channels + c] = buffer[i * read_channels + c];
    }
  }
  return image;
}

}  // namespace

Image decode_image(std::string_view bytes, const std::string& name) {
  switch (sniff_image_format(bytes)) {
    case ImageFormat::jpeg:
      return decode_jpeg(bytes, name);
    case ImageFormat::png:
      return decode_png(bytes, name);
    case ImageFormat::unknown:
      break;
  }
  if (bytes.empty()) {
    throw DecodeError(fmt::format("{}: empty file", name));
  }
  throw DecodeError(fmt::format("{}: not a JPEG or PNG image", name));
}

Image read_image(const std::filesystem::path& path) {
  std::string bytes;
  try {
    bytes = util::read_file(path);
  } catch (const std::exception& error) {
    throw DecodeError(error.what());
  }
  return decode_image(bytes, path.string());
}

std::string encode_png(const Image& image) {
  png_image png;
  std::memset(&png, 0, sizeof(png));
  png.version = PNG_IMAGE_VERSION;
  png.width = static_cast<png_uint_32>(image.width);
  png.height = static_cast<png_uint_32>(image.height);
  png.format = image.channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  png_alloc_size_t size = 0;
  if (!png_image_write_get_memory_size(png, size, /*convert_to_8_bit=*/0, image.pixels.data(),
                                       /*row_stride=*/0, /*colormap=*/nullptr)) {
    throw std::runtime_error(fmt::format("PNG encoding failed: {}", png.message));
  }
  std::string out(size, '\0');
  if (!png_image_write_to_memory(&png, out.data(), &size, /*convert_to_8_bit=*/0,
                                 image.pixels.data(), /*row_stride=*/0, /*colormap=*/nullptr)) {
    throw std::runtime_error(fmt::format("PNG encoding failed: {}", png.message));
  }
  out.resize(size);
  return out;
}

std::string encode_jpeg(const Image& image, int quality) {
  jpeg_compress_struct info;
  JpegErrorManager errors;
  info.err = jpeg_std_error(&errors.base);
  errors.base.error_exit = jpeg_error_exit;
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  if (setjmp(errors.jump) != 0) {
    jpeg_destroy_compress(&info);
    std::free(buffer);
    throw std::runtime_error(fmt::format("JPEG encoding failed: {}", errors.message));
  }
  jpeg_create_compress(&info);
  jpeg_mem_dest(&info, &buffer, &size);
  info.image_width = static_cast<JDIMENSION>(image.width);
  info.image_height = static_cast<JDIMENSION>(image.height);
  info.input_components = image.channels;
  info.in_color_space = image.channels == 3 ? JCS_RGB : JCS_GRAYSCALE;
  jpeg_set_defaults(&info);
  jpeg_set_quality(&info, quality, /*force_baseline=*/TRUE);
  jpeg_start_compress(&info, /*write_all_tables=*/TRUE);
  while (info.next_scanline < info.image_height) {
    // libjpeg takes non-const rows but does not write to them.
    auto* row = const_cast<std::uint8_t*>(image.pixels.data()) +
                static_cast<std::size_t>(info.next_scanline) * image.width * image.channels;
    jpeg_write_scanlines(&info, &row, 1);
  }
  jpeg_finish_compress(&info);
  std::string out(reinterpret_cast<const char*>(buffer), size);
  jpeg_destroy_compress(&info);
  std::free(buffer);
  return out;
}

std::string jpeg_library_version() {
#ifdef LIBJPEG_TURBO_VERSION_NUMBER
  int number = LIBJPEG_TURBO_VERSION_NUMBER;
  return fmt::format("libjpeg-turbo {}.{}.{}", number / 1000000, number / 1000 % 1000,
                     number % 1000);
#else
  return fmt::format("libjpeg {}", JPEG_LIB_VERSION);
#endif
}

std::string png_library_version() {
  return fmt::format("libpng {}", PNG_LIBPNG_VER_STRING);
}

}  // namespace amlrun::train
