#include "lib/train/transforms.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace amlrun::train {

// Rounding uses std::nearbyint (half to even in the default rounding mode),
// which is Python's round(): torchvision's boxes come out identical.

CropBox random_resized_crop_box(int width, int height, double min_scale, SampleRandom& random) {
  constexpr double k_min_ratio = 3.0 / 4.0;
  constexpr double k_max_ratio = 4.0 / 3.0;
  const double area = static_cast<double>(width) * height;
  const double log_min = std::log(k_min_ratio);
  const double log_max = std::log(k_max_ratio);
  for (int attempt = 0; attempt < 10; ++attempt) {
    double target_area = area * random.uniform(min_scale, 1.0);
    double aspect = std::exp(random.uniform(log_min, log_max));
    auto w = static_cast<int>(std::nearbyint(std::sqrt(target_area * aspect)));
    auto h = static_cast<int>(std::nearbyint(std::sqrt(target_area / aspect)));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      auto top = random.integer(0, height - h + 1);
      auto left = random.integer(0, width - w + 1);
      return {static_cast<double>(left), static_cast<double>(top), static_cast<double>(w),
              static_cast<double>(h)};
    }
  }
  double in_ratio = static_cast<double>(width) / height;
  int w = width;
  int h = height;
  if (in_ratio < k_min_ratio) {
    h = static_cast<int>(std::nearbyint(w / k_min_ratio));
  } else if (in_ratio > k_max_ratio) {
    w = static_cast<int>(std::nearbyint(h * k_max_ratio));
  }
  return {static_cast<double>((width - w) / 2), static_cast<double>((height - h) / 2),
          static_cast<double>(w), static_cast<double>(h)};
}

CropBox centre_crop_box(int width, int height, int size) {
  // torchvision's Resize(int): the shorter side becomes `resize`, the longer
  // one is scaled and truncated.
  const int resize = static_cast<int>(std::nearbyint(size * 256.0 / 224.0));
  int resized_w;
  int resized_h;
  if (width <= height) {
    resized_w = resize;
    resized_h = static_cast<int>(static_cast<double>(resize) * height / width);
  } else {
    resized_h = resize;
    resized_w = static_cast<int>(static_cast<double>(resize) * width / height);
  }
  // CenterCrop's offsets in the resized image, then mapped back to the source.
  double crop_top = std::nearbyint((resized_h - size) / 2.0);
  double crop_left = std::nearbyint((resized_w - size) / 2.0);
  double scale_x = static_cast<double>(width) / resized_w;
  double scale_y = static_cast<double>(height) / resized_h;
  return {crop_left * scale_x, crop_top * scale_y, size * scale_x, size * scale_y};
}

namespace {

// Filter taps of one output axis, as PIL's precompute_coeffs computes them for
// the bilinear (triangle) filter.
struct Taps {
  std::vector<int> first;      // first source index per output index
  std::vector<int> count;      // number of taps per output index
  std::vector<float> weights;  // max_count weights per output index
  int max_count = 0;
};

Taps compute_taps(double box_start, double box_size, int source_size, int out_size) {
  const double scale = box_size / out_size;
  const double filter_scale = std::max(scale, 1.0);
  const double support = 1.0 * filter_scale;  // the triangle filter's support is 1
  Taps taps;
  taps.max_count = static_cast<int>(std::ceil(support)) * 2 + 1;
  taps.first.resize(out_size);
  taps.count.resize(out_size);
  taps.weights.assign(static_cast<std::size_t>(out_size) * taps.max_count, 0.0f);
  const double inverse = 1.0 / filter_scale;
  for (int out = 0; out < out_size; ++out) {
    double centre = box_start + (out + 0.5) * scale;
    int low = std::max(static_cast<int>(centre - support + 0.5), 0);
    int high = std::min(static_cast<int>(centre + support + 0.5), source_size);
    int n = std::min(std::max(high - low, 0), taps.max_count);
    double total = 0;
    float* w = &taps.weights[static_cast<std::size_t>(out) * taps.max_count];
    for (int k = 0; k < n; ++k) {
      double x = (k + low - centre + 0.5) * inverse;
      double value = std::max(0.0, 1.0 - std::abs(x));
      w[k] = static_cast<float>(value);
      total += value;
    }
    if (total > 0) {
      for (int k = 0; k < n; ++k) {
        w[k] = static_cast<float>(w[k] / total);
      }
    } else {
      // A box entirely outside the image cannot happen with our boxes; keep
      // one tap on the nearest pixel rather than dividing by zero.
      low = std::clamp(static_cast<int>(centre), 0, source_size - 1);
      n = 1;
      w[0] = 1.0f;
    }
    taps.first[out] = low;
    taps.count[out] = n;
  }
  return taps;
}

}  // namespace

void resample_normalized(const Image& image, const CropBox& box, int size, bool flip,
                         const Normalization& normalization, float* out) {
  const int channels = image.channels;
  const Taps horizontal = compute_taps(box.left, box.width, image.width, size);
  const Taps vertical = compute_taps(box.top, box.height, image.height, size);
  // Source rows the vertical pass reads.
  int row_begin = image.height;
  int row_end = 0;
  for (int y = 0; y < size; ++y) {
    row_begin = std::min(row_begin, vertical.first[y]);
    row_end = std::max(row_end, vertical.first[y] + vertical.count[y]);
  }
  // Horizontal pass: only the needed rows, size columns, all channels.
  const int rows = row_end - row_begin;
  std::vector<float> temp(static_cast<std::size_t>(rows) * size * channels);
  for (int r = 0; r < rows; ++r) {
    const std::uint8_t* source =
        image.pixels.data() + static_cast<std::size_t>(row_begin + r) * image.width * channels;
    float* dest = temp.data() + static_cast<std::size_t>(r) * size * channels;
    for (int x = 0; x < size; ++x) {
      const float* w = &horizontal.weights[static_cast<std::size_t>(x) * horizontal.max_count];
      const std::uint8_t* s = source + static_cast<std::size_t>(horizontal.first[x]) * channels;
      const int n = horizontal.count[x];
      for (int c = 0; c < channels; ++c) {
        float sum = 0;
        for (int k = 0; k < n; ++k) {
          sum += w[k] * s[k * channels + c];
        }
        dest[x * channels + c] = sum;
      }
    }
  }
  // Vertical pass straight into the normalised output planes; the 1/255 of
  // ToTensor is folded into the normalisation's scale.
  const std::size_t plane = static_cast<std::size_t>(size) * size;
  float scale[3];
  float shift[3];
  for (int c = 0; c < 3; ++c) {
    scale[c] = 1.0f / (255.0f * normalization.std[c]);
    shift[c] = -normalization.mean[c] / normalization.std[c];
  }
  std::vector<float> row(static_cast<std::size_t>(size) * channels);
  for (int y = 0; y < size; ++y) {
    const float* w = &vertical.weights[static_cast<std::size_t>(y) * vertical.max_count];
    const int n = vertical.count[y];
    const float* base =
        temp.data() + static_cast<std::size_t>(vertical.first[y] - row_begin) * size * channels;
    std::fill(row.begin(), row.end(), 0.0f);
    for (int k = 0; k < n; ++k) {
      const float* source = base + static_cast<std::size_t>(k) * size * channels;
      const float weight = w[k];
      for (int i = 0; i < size * channels; ++i) {
        row[i] += weight * source[i];
      }
    }
    for (int x = 0; x < size; ++x) {
      const int out_x = flip ? size - 1 - x : x;
      for (int c = 0; c < 3; ++c) {
        float value = row[x * channels + (channels == 3 ? c : 0)];
        out[c * plane + static_cast<std::size_t>(y) * size + out_x] = value * scale[c] + shift[c];
      }
    }
  }
}

void train_transform(const Image& image, int size, double min_scale, SampleRandom& random,
                     float* out) {
  CropBox box = random_resized_crop_box(image.width, image.height, min_scale, random);
  bool flip = random.uniform() < 0.5;
  resample_normalized(image, box, size, flip, k_imagenet_normalization, out);
}

void eval_transform(const Image& image, int size, float* out, const Normalization& normalization) {
  resample_normalized(image, centre_crop_box(image.width, image.height, size), size,
                      /*flip=*/false, normalization, out);
}

}  // namespace amlrun::train
