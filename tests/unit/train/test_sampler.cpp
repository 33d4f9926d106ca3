#include <catch2/catch.hpp>

#include <algorithm>
#include <numeric>
#include <set>

#include "lib/train/buckets.hpp"
#include "lib/train/sampler.hpp"

using namespace amlrun::train;

TEST_CASE("an epoch's permutation is a seeded shuffle of every index", "[sampler]") {
  std::vector<std::size_t> order = epoch_permutation(1000, /*seed=*/1, /*epoch=*/0);
  std::vector<std::size_t> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  std::vector<std::size_t> expected(1000);
  std::iota(expected.begin(), expected.end(), 0);
  CHECK(sorted == expected);
  CHECK(order != expected);
  CHECK(order == epoch_permutation(1000, 1, 0));
  CHECK(order != epoch_permutation(1000, 1, 1));
  CHECK(order != epoch_permutation(1000, 2, 0));
}

TEST_CASE("train shards are DistributedSampler's: padded, strided, equal sizes", "[sampler]") {
  const std::size_t size = 103;
  std::vector<std::size_t> order = epoch_permutation(size, 5, 3);
  for (int world : {1, 2, 3, 4, 8}) {
    std::size_t padded = (size + world - 1) / world * world;
    std::multiset<std::size_t> all;
    for (int rank = 0; rank < world; ++rank) {
      std::vector<std::size_t> shard = train_shard(size, 5, 3, rank, world);
      REQUIRE(shard.size() == padded / world);
      for (std::size_t i = 0; i < shard.size(); ++i) {
        // Position rank + i*world of the padded permutation; padding repeats its head.
        std::size_t position = rank + i * world;
        CHECK(shard[i] == order[position % size]);
        all.insert(shard[i]);
      }
    }
    CHECK(all.size() == padded);
    for (std::size_t index = 0; index < size; ++index) {
      CHECK(all.count(index) >= 1);
    }
  }
}

TEST_CASE("one rank with batch 2B sees what two ranks with batch B see together", "[sampler]") {
  // The property the 2-rank = 1-rank end-to-end test relies on.
  const std::size_t size = 64;
  auto single = split_batches(train_shard(size, 9, 1, 0, 1), 8, true);
  auto rank0 = split_batches(train_shard(size, 9, 1, 0, 2), 4, true);
  auto rank1 = split_batches(train_shard(size, 9, 1, 1, 2), 4, true);
  REQUIRE(single.size() == rank0.size());
  REQUIRE(single.size() == rank1.size());
  for (std::size_t b = 0; b < single.size(); ++b) {
    std::multiset<std::size_t> together(rank0[b].begin(), rank0[b].end());
    together.insert(rank1[b].begin(), rank1[b].end());
    CHECK(together == std::multiset<std::size_t>(single[b].begin(), single[b].end()));
  }
}

TEST_CASE("evaluation shards cover each sample exactly once", "[sampler]") {
  std::multiset<std::size_t> all;
  for (int rank = 0; rank < 3; ++rank) {
    for (std::size_t index : eval_shard(10, rank, 3)) {
      all.insert(index);
    }
  }
  CHECK(all == std::multiset<std::size_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  CHECK(eval_shard(10, 0, 3) == std::vector<std::size_t>{0, 3, 6, 9});
  CHECK(eval_shard(2, 2, 3).empty());
}

TEST_CASE("batches split in order; a single-sample tail is dropped only when asked", "[sampler]") {
  std::vector<std::size_t> indices = {4, 8, 15, 16, 23, 42, 7};
  auto kept = split_batches(indices, 3, false);
  REQUIRE(kept.size() == 3);
  CHECK(kept[0] == std::vector<std::size_t>{4, 8, 15});
  CHECK(kept[2] == std::vector<std::size_t>{7});
  auto dropped = split_batches(indices, 3, true);
  CHECK(dropped.size() == 2);
  CHECK(split_batches({1}, 4, true).size() == 1);  // the only batch is never dropped
  CHECK(split_batches({1, 2, 3, 4, 5}, 4, true).back() == std::vector<std::size_t>{1, 2, 3, 4});
}

TEST_CASE("buckets take consecutive parameters up to the cap", "[buckets]") {
  // Sizes in floats (4 bytes); caps of 100 bytes first, then 400 bytes.
  std::vector<std::size_t> numels = {10, 10, 10, 50, 40, 200, 5, 5};
  std::vector<Bucket> buckets = assign_buckets(numels, 4, 100, 400);
  REQUIRE(buckets.size() == 4);
  // First bucket: 10+10 floats = 80 bytes; a third parameter would be 120 > 100.
  CHECK(buckets[0].first == 0);
  CHECK(buckets[0].count == 2);
  CHECK(buckets[0].offset == 0);
  CHECK(buckets[0].numel == 20);
  // Then 10+50+40 = 100 floats = 400 bytes exactly.
  CHECK(buckets[1].first == 2);
  CHECK(buckets[1].count == 3);
  CHECK(buckets[1].offset == 20);
  CHECK(buckets[1].numel == 100);
  // 200 floats = 800 bytes exceeds the cap: a bucket of its own.
  CHECK(buckets[2].first == 5);
  CHECK(buckets[2].count == 1);
  CHECK(buckets[2].numel == 200);
  CHECK(buckets[3].first == 6);
  CHECK(buckets[3].count == 2);
  CHECK(buckets[3].offset == 320);
}

TEST_CASE("buckets cover every parameter once, in order, contiguously", "[buckets]") {
  std::vector<std::size_t> numels;
  for (std::size_t i = 0; i < 62; ++i) {
    numels.push_back(1 + (i * 7919) % 300000);
  }
  std::vector<Bucket> buckets = assign_buckets(numels, 4, 1 << 20, 25'000'000);
  std::size_t next_parameter = 0;
  std::size_t next_offset = 0;
  for (const Bucket& bucket : buckets) {
    CHECK(bucket.first == next_parameter);
    CHECK(bucket.offset == next_offset);
    std::size_t numel = 0;
    for (std::size_t i = bucket.first; i < bucket.first + bucket.count; ++i) {
      numel += numels[i];
    }
    CHECK(bucket.numel == numel);
    next_parameter += bucket.count;
    next_offset += numel;
  }
  CHECK(next_parameter == numels.size());
  CHECK(buckets.front().numel * 4 <= (1u << 20));
  CHECK(assign_buckets({}, 4, 100, 100).empty());
}
