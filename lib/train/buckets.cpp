#include "lib/train/buckets.hpp"

namespace amlrun::train {

std::vector<Bucket> assign_buckets(const std::vector<std::size_t>& numels,
                                   std::size_t element_bytes, std::size_t first_cap_bytes,
                                   std::size_t cap_bytes) {
  std::vector<Bucket> buckets;
  std::size_t offset = 0;
  for (std::size_t i = 0; i < numels.size(); ++i) {
    const std::size_t bytes = numels[i] * element_bytes;
    // The last bucket takes the parameter unless that would exceed its cap.
    if (!buckets.empty()) {
      Bucket& last = buckets.back();
      const std::size_t last_cap = buckets.size() == 1 ? first_cap_bytes : cap_bytes;
      if (last.numel * element_bytes + bytes <= last_cap) {
        last.count += 1;
        last.numel += numels[i];
        offset += numels[i];
        continue;
      }
    }
    buckets.push_back(Bucket{i, 1, offset, numels[i]});
    offset += numels[i];
  }
  return buckets;
}

}  // namespace amlrun::train
