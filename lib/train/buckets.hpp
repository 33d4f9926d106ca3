#pragma once
// How gradients are grouped for allreduce. No LibTorch: the assignment only
// needs the parameters' sizes, and is unit-tested on its own.
#include <cstddef>
#include <vector>

namespace amlrun::train {

// Parameters [first, first + count) of the ordered list, stored at element
// [offset, offset + numel) of one flat buffer.
struct Bucket {
  std::size_t first = 0;
  std::size_t count = 0;
  std::size_t offset = 0;
  std::size_t numel = 0;
};

// Cuts the parameters, in the order given, into consecutive buckets of at
// most cap_bytes each (the first one at most first_cap_bytes, so that the
// first allreduce starts early in backward, as PyTorch DDP does). A parameter
// larger than the cap gets a bucket of its own. The caller passes parameters
// in reverse registration order: that is roughly the order in which backward
// produces their gradients. Every rank computes the same assignment from the
// same model, which is what keeps the allreduce order identical everywhere.
std::vector<Bucket> assign_buckets(const std::vector<std::size_t>& numels,
                                   std::size_t element_bytes, std::size_t first_cap_bytes,
                                   std::size_t cap_bytes);

}  // namespace amlrun::train
