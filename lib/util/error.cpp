#include "lib/util/error.hpp"

#include <cerrno>
#include <cstring>

namespace amlrun::util {

std::string errno_message(const std::string& what, int error_number) {
  return what + ": " + std::strerror(error_number);
}

void throw_errno(const std::string& what) {
  throw InfraError(errno_message(what, errno));
}

}  // namespace amlrun::util
