#include <catch2/catch.hpp>

#include <set>

#include "lib/sweep/sobol.hpp"

using namespace amlrun::sweep;

// The expected points are SciPy 1.10's (Debian python3-scipy):
//   scipy.stats.qmc.Sobol(d=32, scramble=False).random(128)
// an implementation nobody here wrote, on the same direction numbers.
TEST_CASE("sobol points are SciPy's unscrambled points", "[sobol]") {
  CHECK(sobol_point(0, 4) == std::vector<double>{0, 0, 0, 0});
  CHECK(sobol_point(1, 4) == std::vector<double>{0.5, 0.5, 0.5, 0.5});
  CHECK(sobol_point(2, 4) == std::vector<double>{0.75, 0.25, 0.25, 0.25});
  CHECK(sobol_point(3, 4) == std::vector<double>{0.25, 0.75, 0.75, 0.75});
  CHECK(sobol_point(4, 4) == std::vector<double>{0.375, 0.375, 0.625, 0.875});
  CHECK(sobol_point(5, 4) == std::vector<double>{0.875, 0.875, 0.125, 0.375});
  auto pick = [](std::uint64_t index) {
    std::vector<double> p = sobol_point(index, 32);
    return std::vector<double>{p[0], p[5], p[17], p[31]};
  };
  CHECK(pick(5) == std::vector<double>{0.875, 0.625, 0.375, 0.625});
  CHECK(pick(11) == std::vector<double>{0.4375, 0.0625, 0.0625, 0.0625});
  CHECK(pick(100) == std::vector<double>{0.4140625, 0.7421875, 0.7421875, 0.4140625});
  CHECK(pick(127) == std::vector<double>{0.0078125, 0.3359375, 0.2109375, 0.1328125});
}

TEST_CASE("each coordinate of the first 2^m points falls once in each 2^-m cell", "[sobol]") {
  for (std::size_t d = 0; d < k_sobol_max_dimensions; ++d) {
    std::set<int> cells;
    for (std::uint64_t i = 0; i < 64; ++i) {
      cells.insert(static_cast<int>(sobol_point(i, d + 1)[d] * 64));
    }
    CHECK(cells.size() == 64);
  }
}

TEST_CASE("a digital shift keeps the spread and changes the points", "[sobol]") {
  const std::vector<std::uint32_t> shift = {0x80000000U, 0x12345678U};
  CHECK(sobol_point(1, 2, shift)[0] == 0.0);  // 0.5 with its top bit flipped
  std::set<int> cells;
  for (std::uint64_t i = 0; i < 32; ++i) {
    cells.insert(static_cast<int>(sobol_point(i, 2, shift)[1] * 32));
  }
  CHECK(cells.size() == 32);
  CHECK_THROWS_AS(sobol_point(1, 33), std::invalid_argument);
}
