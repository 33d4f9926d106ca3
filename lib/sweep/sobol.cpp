#include "lib/sweep/sobol.hpp"

#include <array>
#include <stdexcept>

namespace amlrun::sweep {

namespace {

// Dimensions 2..32 of Joe and Kuo's table: the primitive polynomial (its
// bits, leading and trailing 1 included: 7 is x² + x + 1) and the initial
// direction numbers m_1..m_degree. Dimension 1 is van der Corput's.
struct Row {
  std::uint32_t polynomial;
  std::array<std::uint32_t, 7> m;
};
constexpr std::array<Row, 31> k_rows = {{
    {3, {1}},
    {7, {1, 3}},
    {11, {1, 3, 1}},
    {13, {1, 1, 1}},
    {19, {1, 1, 3, 3}},
    {25, {1, 3, 5, 13}},
    {37, {1, 1, 5, 5, 17}},
    {41, {1, 1, 5, 5, 5}},
    {47, {1, 1, 7, 11, 19}},
    {55, {1, 1, 5, 1, 1}},
    {59, {1, 1, 1, 3, 11}},
    {61, {1, 3, 5, 5, 31}},
    {67, {1, 3, 3, 9, 7, 49}},
    {91, {1, 1, 1, 15, 21, 21}},
    {97, {1, 3, 1, 13, 27, 49}},
    {103, {1, 1, 1, 15, 7, 5}},
    {109, {1, 3, 1, 15, 13, 25}},
    {115, {1, 1, 5, 5, 19, 61}},
    {131, {1, 3, 7, 11, 23, 15, 103}},
    {137, {1, 3, 7, 13, 13, 15, 69}},
    {143, {1, 1, 3, 13, 7, 35, 63}},
    {145, {1, 3, 5, 9, 1, 25, 53}},
    {157, {1, 3, 1, 13, 9, 35, 107}},
    {167, {1, 3, 1, 5, 27, 61, 31}},
    {171, {1, 1, 5, 11, 19, 41, 61}},
    {185, {1, 3, 5, 3, 3, 13, 69}},
    {191, {1, 1, 7, 13, 1, 19, 1}},
    {193, {1, 3, 7, 5, 13, 19, 59}},
    {203, {1, 1, 3, 9, 25, 29, 41}},
    {211, {1, 3, 5, 13, 23, 1, 55}},
    {213, {1, 3, 7, 3, 13, 59, 17}},
}};

constexpr int k_bits = 32;
using Directions = std::array<std::array<std::uint32_t, k_bits>, k_sobol_max_dimensions>;

// v[d][j] = m_j / 2^(j+1), left-aligned in 32 bits, extended past the
// initial numbers by the polynomial's recurrence (Bratley and Fox).
Directions make_directions() {
  Directions v{};
  for (int j = 0; j < k_bits; ++j) {
    v[0][j] = 1U << (k_bits - 1 - j);
  }
  for (std::size_t d = 1; d < k_sobol_max_dimensions; ++d) {
    const Row& row = k_rows[d - 1];
    int degree = 0;
    while ((row.polynomial >> (degree + 1)) != 0) {
      ++degree;
    }
    for (int j = 0; j < degree; ++j) {
      v[d][j] = row.m[j] << (k_bits - 1 - j);
    }
    for (int j = degree; j < k_bits; ++j) {
      std::uint32_t value = v[d][j - degree] ^ (v[d][j - degree] >> degree);
      for (int i = 1; i < degree; ++i) {
        // Coefficient a_i of x^(degree-i) in the polynomial.
        if ((row.polynomial >> (degree - i)) & 1U) {
          value ^= v[d][j - i];
        }
      }
      v[d][j] = value;
    }
  }
  return v;
}

}  // namespace

std::vector<double> sobol_point(std::uint64_t index, std::size_t dims,
                                const std::vector<std::uint32_t>& shift) {
  if (dims > k_sobol_max_dimensions) {
    throw std::invalid_argument("sobol_point: more than 32 dimensions");
  }
  static const Directions v = make_directions();
  // Antonov and Saleev's order, as SciPy's: point i is the XOR of the
  // directions of the set bits of i's Gray code, computed directly so any
  // point is found without the ones before it.
  const std::uint64_t gray = index ^ (index >> 1);
  std::vector<double> point(dims);
  for (std::size_t d = 0; d < dims; ++d) {
    std::uint32_t x = 0;
    for (int j = 0; j < k_bits && (gray >> j) != 0; ++j) {
      if ((gray >> j) & 1U) {
        x ^= v[d][j];
      }
    }
    if (d < shift.size()) {
      x ^= shift[d];
    }
    point[d] = static_cast<double>(x) / 4294967296.0;
  }
  return point;
}

}  // namespace amlrun::sweep
