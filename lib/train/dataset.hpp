#pragma once
// Labelled image folders: one sub-folder per class, JPEG and PNG files below.
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "lib/train/image.hpp"

namespace amlrun::train {

struct Sample {
  std::filesystem::path path;
  int label = 0;
};

// The result of scanning a folder, before any image is decoded.
struct ImageFolder {
  std::filesystem::path root;
  std::vector<std::string> classes;  // sorted by name, as torchvision's ImageFolder
  std::vector<Sample> samples;       // by class, then by path
  std::size_t ignored_files = 0;     // files that are neither .jpg/.jpeg nor .png
};

// Scans `root`. Class folders are the sub-folders (sorted; names starting
// with '.' are skipped, so .ipynb_checkpoints is not a class); images are the
// .jpg/.jpeg/.png files anywhere below a class folder, sorted by path. Throws
// util::InputError naming `option` (e.g. "--train-data") when the folder is
// missing, unreadable, has no class sub-folders, or a class has no image.
ImageFolder scan_image_folder(const std::filesystem::path& root, const std::string& option);

// Throws util::InputError naming both sets when the validation classes are not
// the training classes.
void check_same_classes(const ImageFolder& train, const std::string& train_option,
                        const ImageFolder& validation, const std::string& validation_option);

// Images of a folder, decoded on demand or all at once into memory.
class ImageDataset {
 public:
  ImageDataset(ImageFolder folder, bool strict);

  // Decodes every image with `threads` threads and keeps them in memory when
  // they are estimated to fit in cache_bytes (a sample of the images is
  // decoded to estimate). Corrupt images are removed from the dataset and
  // counted; with strict, the first one throws util::InputError. Returns
  // whether the dataset is now cached. Every rank does this identically, so
  // every rank agrees on the dataset's size.
  bool cache_if_small(std::uint64_t cache_bytes, int threads);

  std::size_t size() const { return m_folder.samples.size(); }
  const std::vector<std::string>& classes() const { return m_folder.classes; }
  const ImageFolder& folder() const { return m_folder; }
  int label(std::size_t index) const { return m_folder.samples[index].label; }
  bool cached() const { return !m_cache.empty(); }
  std::uint64_t cache_bytes() const { return m_cache_bytes; }

  // The decoded image: from the cache, else read and decoded into `scratch`.
  // Returns nullptr for a corrupt image (counted, warned about once) unless
  // strict, where it throws util::InputError.
  const Image* image(std::size_t index, Image& scratch) const;

  // Corrupt images found so far (at caching time and while loading).
  std::size_t corrupt_count() const { return m_corrupt.load(); }
  // Why sample `index` could not be decoded ("" when it was not found
  // corrupt), as the warning said it: "PATH: what is wrong".
  std::string corrupt_reason(std::size_t index) const;

  // Throws util::InputError when not one image can be decoded, so a run
  // never trains on nothing: "no readable training images in DIR (3
  // skipped: DIR/a/0.png: empty file, and 2 more)". `kind` ("training",
  // "validation", or "" for any) says which set. When caching has not
  // already found a readable image, images are decoded in order until one is
  // (each failure warned about, or fatal with strict): one decode for a
  // healthy dataset.
  void require_readable_image(const std::string& kind);

 private:
  void report_corrupt(std::size_t index, const std::string& reason) const;

  ImageFolder m_folder;
  bool m_strict;
  std::vector<Image> m_cache;
  std::uint64_t m_cache_bytes = 0;
  mutable std::atomic<std::size_t> m_corrupt{0};
  mutable std::mutex m_mutex;
  mutable std::map<std::filesystem::path, std::string> m_warned;  // path → reason
  mutable std::string m_first_corrupt;  // the reason of the first corrupt image
  bool m_readable_seen = false;         // some image decoded (while caching)
};

}  // namespace amlrun::train
