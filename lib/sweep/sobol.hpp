#pragma once
// The Sobol low-discrepancy sequence in up to 32 dimensions, with Joe and
// Kuo's direction numbers (new-joe-kuo-6.21201, the set SciPy's qmc.Sobol
// uses; the unit tests compare with SciPy's points).
#include <cstddef>
#include <cstdint>
#include <vector>

namespace amlrun::sweep {

inline constexpr std::size_t k_sobol_max_dimensions = 32;

// Point `index` (0 is the origin) of the unscrambled sequence, each
// coordinate XOR-ed with `shift`'s 32-bit word for it (a digital shift:
// the points keep their spread, and a seed gives another sequence). `shift`
// may be empty. dims <= k_sobol_max_dimensions; index < 2^32.
std::vector<double> sobol_point(std::uint64_t index, std::size_t dims,
                                const std::vector<std::uint32_t>& shift = {});

}  // namespace amlrun::sweep
