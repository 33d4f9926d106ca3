#pragma once
// The image transforms of torchvision's classification recipe, fused into one
// pass per image: crop box → antialiased bilinear resample → optional
// horizontal flip → ImageNet normalisation → CHW float planes. torchvision
// does the same in four steps on PIL images and tensors; fusing them avoids
// three intermediate images per sample.
#include <array>

#include "lib/train/image.hpp"
#include "lib/train/random.hpp"

namespace amlrun::train {

// A region of the source image in pixel coordinates; fractional edges are
// allowed (validation's resize-then-crop maps to a fractional box).
struct CropBox {
  double left = 0;
  double top = 0;
  double width = 0;
  double height = 0;
};

struct Normalization {
  std::array<float, 3> mean;
  std::array<float, 3> std;
};

// torchvision.transforms.Normalize's usual ImageNet statistics.
inline constexpr Normalization k_imagenet_normalization{{0.485f, 0.456f, 0.406f},
                                                        {0.229f, 0.224f, 0.225f}};

// torchvision.transforms.RandomResizedCrop.get_params with scale
// (min_scale, 1) and ratio (3/4, 4/3): ten tries at a random area and aspect
// ratio, then the centre crop fallback. Integer box, as torchvision's.
CropBox random_resized_crop_box(int width, int height, double min_scale, SampleRandom& random);

// Resize(round(size * 256 / 224)) followed by CenterCrop(size), expressed as
// the box of the source that ends up in the output: the standard evaluation
// transform (the 256/224 ratio of the ImageNet recipe).
CropBox centre_crop_box(int width, int height, int size);

// Resamples `box` of `image` to size × size with PIL's antialiased bilinear
// filter (the support widens when shrinking, so small outputs do not alias),
// mirrors it when `flip`, normalises, and writes 3 planes of size × size
// floats to `out` (grey images are repeated into the three planes, as
// ImageFolder's convert("RGB") does).
void resample_normalized(const Image& image, const CropBox& box, int size, bool flip,
                         const Normalization& normalization, float* out);

// The whole training transform of one sample: random resized crop, flip with
// probability 1/2, normalise. Deterministic in `random`.
void train_transform(const Image& image, int size, double min_scale, SampleRandom& random,
                     float* out);

// The whole evaluation transform of one sample.
void eval_transform(const Image& image, int size, float* out,
                    const Normalization& normalization = k_imagenet_normalization);

}  // namespace amlrun::train
