#pragma once
#include <cstddef>
#include <string>

namespace amlrun::util {

// `bytes` random bytes from the kernel (getrandom), as lower-case hex.
std::string random_hex(std::size_t bytes);

}  // namespace amlrun::util
