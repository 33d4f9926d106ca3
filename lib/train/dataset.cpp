#include "lib/train/dataset.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <system_error>
#include <thread>

#include "lib/train/messages.hpp"
#include "lib/util/error.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::train {

namespace fs = std::filesystem;

namespace {

bool is_hidden(const fs::path& path) {
  std::string name = path.filename().string();
  return !name.empty() && name[0] == '.';
}

bool has_image_extension(const fs::path& path) {
  std::string extension = path.extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return extension == ".jpg" || extension == ".jpeg" || extension == ".png";
}

std::string describe(const fs::path& root, const std::string& option) {
  return fmt::format("{} {}", option, root.string());
}

// Shows at most `limit` names, so a message stays one readable line.
std::string name_list(const std::vector<std::string>& names, std::size_t limit = 12) {
  std::vector<std::string> shown;
  for (std::size_t i = 0; i < names.size() && i < limit; ++i) {
    shown.push_back(names[i]);
  }
  std::string text = util::join(shown, ", ");
  if (names.size() > limit) {
    text += fmt::format(", ... ({} more)", names.size() - limit);
  }
  return text;
}

}  // namespace

ImageFolder scan_image_folder(const fs::path& root, const std::string& option) {
  std::error_code error;
  fs::file_status status = fs::status(root, error);
  if (error || !fs::exists(status)) {
    if (error && error != std::errc::no_such_file_or_directory) {
      throw util::InputError(
          fmt::format("{}: cannot read: {}", describe(root, option), error.message()));
    }
    throw util::InputError(fmt::format("{}: no such folder", describe(root, option)));
  }
  if (!fs::is_directory(status)) {
    throw util::InputError(fmt::format("{}: not a folder", describe(root, option)));
  }
  ImageFolder folder;
  folder.root = root;
  std::vector<fs::path> class_dirs;
  fs::directory_iterator it(root, error);
  if (error) {
    throw util::InputError(
        fmt::format("{}: cannot read: {}", describe(root, option), error.message()));
  }
  for (const fs::directory_entry& entry : it) {
    if (!is_hidden(entry.path()) && entry.is_directory(error)) {
      class_dirs.push_back(entry.path());
    }
  }
  if (class_dirs.empty()) {
    throw util::InputError(fmt::format("{}: not a labelled image folder (no class sub-folders)",
                                       describe(root, option)));
  }
  std::sort(class_dirs.begin(), class_dirs.end());
  for (const fs::path& class_dir : class_dirs) {
    const int label = static_cast<int>(folder.classes.size());
    folder.classes.push_back(class_dir.filename().string());
    std::vector<fs::path> files;
    fs::recursive_directory_iterator walk(class_dir, error);
    if (error) {
      throw util::InputError(fmt::format("{}: cannot read class folder '{}': {}",
                                         describe(root, option), folder.classes.back(),
                                         error.message()));
    }
    for (auto entry = walk; entry != fs::recursive_directory_iterator(); entry.increment(error)) {
      if (error) {
        throw util::InputError(fmt::format("{}: cannot read class folder '{}': {}",
                                           describe(root, option), folder.classes.back(),
                                           error.message()));
      }
      if (is_hidden(entry->path())) {
        if (entry->is_directory(error)) {
          entry.disable_recursion_pending();
        }
        continue;
      }
      if (!entry->is_regular_file(error)) {
        continue;
      }
      if (has_image_extension(entry->path())) {
        files.push_back(entry->path());
      } else {
        folder.ignored_files += 1;
      }
    }
    if (files.empty()) {
      throw util::InputError(fmt::format("{}: class folder '{}' has no JPEG or PNG images",
                                         describe(root, option), folder.classes.back()));
    }
    std::sort(files.begin(), files.end());
    for (fs::path& file : files) {
      folder.samples.push_back(Sample{std::move(file), label});
    }
  }
  return folder;
}

void check_same_classes(const ImageFolder& train, const std::string& train_option,
                        const ImageFolder& validation, const std::string& validation_option) {
  if (train.classes == validation.classes) {
    return;
  }
  throw util::InputError(
      fmt::format("{} {} and {} {} have different classes: {} has {} ({}), {} has {} ({})",
                  train_option, train.root.string(), validation_option, validation.root.string(),
                  train_option, train.classes.size(), name_list(train.classes), validation_option,
                  validation.classes.size(), name_list(validation.classes)));
}

ImageDataset::ImageDataset(ImageFolder folder, bool strict)
    : m_folder(std::move(folder)), m_strict(strict) {}

void ImageDataset::report_corrupt(std::size_t index, const std::string& reason) const {
  if (m_strict) {
    throw util::InputError(fmt::format("corrupt image (--strict): {}", reason));
  }
  std::lock_guard lock(m_mutex);
  if (m_warned.emplace(m_folder.samples[index].path, reason).second) {
    m_corrupt.fetch_add(1);
    if (m_first_corrupt.empty()) {
      m_first_corrupt = reason;
    }
    worker_warning(fmt::format("skipping corrupt image {}", reason));
  }
}

bool ImageDataset::cache_if_small(std::uint64_t cache_bytes, int threads) {
  const std::size_t count = m_folder.samples.size();
  if (count == 0 || cache_bytes == 0) {
    return false;
  }
  // Estimate from an evenly spread sample of up to 32 images.
  std::uint64_t sampled_bytes = 0;
  std::size_t sampled = 0;
  const std::size_t stride = std::max<std::size_t>(1, count / 32);
  for (std::size_t i = 0; i < count && sampled < 32; i += stride) {
    try {
      sampled_bytes += read_image(m_folder.samples[i].path).byte_size() + sizeof(Image);
      sampled += 1;
    } catch (const DecodeError&) {
      // Counted when the whole dataset is decoded below.
    }
  }
  m_readable_seen = sampled > 0;
  if (sampled == 0 || sampled_bytes / sampled * count > cache_bytes) {
    return false;
  }
  std::vector<Image> images(count);
  std::vector<std::string> errors(count);
  std::atomic<std::size_t> next{0};
  auto decode_some = [&] {
    for (std::size_t i = next.fetch_add(1); i < count; i = next.fetch_add(1)) {
      try {
        images[i] = read_image(m_folder.samples[i].path);
      } catch (const DecodeError& error) {
        errors[i] = error.what();
      }
    }
  };
  std::vector<std::thread> workers;
  for (int t = 1; t < std::max(threads, 1); ++t) {
    workers.emplace_back(decode_some);
  }
  decode_some();
  for (std::thread& worker : workers) {
    worker.join();
  }
  // Corrupt images leave the dataset here, before any shard is computed, so
  // the sample count is the same on every rank.
  std::vector<Sample> kept;
  kept.reserve(count);
  m_cache.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    if (!errors[i].empty()) {
      report_corrupt(i, errors[i]);
      continue;
    }
    m_cache_bytes += images[i].byte_size();
    m_cache.push_back(std::move(images[i]));
    kept.push_back(std::move(m_folder.samples[i]));
  }
  m_folder.samples = std::move(kept);
  return true;
}

void ImageDataset::require_readable_image(const std::string& kind) {
  if (m_readable_seen && size() > 0) {
    return;
  }
  // Not cached (a cached dataset holds only readable images): probe.
  for (std::size_t i = 0; i < size(); ++i) {
    try {
      read_image(m_folder.samples[i].path);
      m_readable_seen = true;
      return;
    } catch (const DecodeError& error) {
      report_corrupt(i, error.what());
    }
  }
  const std::size_t skipped = corrupt_count();
  throw util::InputError(fmt::format("no readable {}images in {} ({} skipped: {}{})",
                                     kind.empty() ? "" : kind + " ", m_folder.root.string(),
                                     skipped, m_first_corrupt,
                                     skipped > 1 ? fmt::format(", and {} more", skipped - 1) : ""));
}

std::string ImageDataset::corrupt_reason(std::size_t index) const {
  std::lock_guard lock(m_mutex);
  auto found = m_warned.find(m_folder.samples[index].path);
  return found == m_warned.end() ? std::string() : found->second;
}

const Image* ImageDataset::image(std::size_t index, Image& scratch) const {
  if (!m_cache.empty()) {
    return &m_cache[index];
  }
  try {
    scratch = read_image(m_folder.samples[index].path);
    return &scratch;
  } catch (const DecodeError& error) {
    report_corrupt(index, error.what());
    return nullptr;
  }
}

}  // namespace amlrun::train
