#pragma once
// One error type per layer, all deriving from util::Error, which carries the
// documented process exit code. cli/amlrun/main.cpp holds the single catch
// that prints "amlrun: error: ..." and exits with that code.
#include <stdexcept>
#include <string>

namespace amlrun {

// Exit codes as documented in README (and DESIGN.md).
enum class ExitCode : int {
  ok = 0,
  run_failed = 1,
  invalid_input = 2,
  infrastructure = 3,
  run_canceled = 4,
  interrupted = 130,
};

namespace util {

class Error : public std::runtime_error {
 public:
  Error(ExitCode code, const std::string& message) : std::runtime_error(message), m_code(code) {}
  ExitCode code() const { return m_code; }

 private:
  ExitCode m_code;
};

// Something the user wrote or pointed at is wrong: usage, spec, name, path.
class InputError : public Error {
 public:
  explicit InputError(const std::string& message) : Error(ExitCode::invalid_input, message) {}
};

// The machine, a service or a compute target failed us; not the user's input.
class InfraError : public Error {
 public:
  explicit InfraError(const std::string& message) : Error(ExitCode::infrastructure, message) {}
};

// Formats errno into "what: strerror" so every system error reads the same.
std::string errno_message(const std::string& what, int error_number);
[[noreturn]] void throw_errno(const std::string& what);

}  // namespace util
}  // namespace amlrun
