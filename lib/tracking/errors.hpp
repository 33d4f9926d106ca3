#pragma once
// MLflow's error answers: {"error_code": "...", "message": "..."} with the
// HTTP status MLflow gives each code, so the client raises what it raises
// against MLflow's own server.
#include <stdexcept>
#include <string>

namespace amlrun::tracking {

class TrackingError : public std::runtime_error {
 public:
  TrackingError(int status, std::string code, const std::string& message)
      : std::runtime_error(message), m_status(status), m_code(std::move(code)) {}
  int status() const { return m_status; }
  const std::string& code() const { return m_code; }

 private:
  int m_status;
  std::string m_code;
};

// 400 INVALID_PARAMETER_VALUE: a value breaks a rule.
[[noreturn]] void invalid_parameter(const std::string& message);
// 404 RESOURCE_DOES_NOT_EXIST.
[[noreturn]] void does_not_exist(const std::string& message);
// 400 RESOURCE_ALREADY_EXISTS (MLflow answers it with 400).
[[noreturn]] void already_exists(const std::string& message);
// 403 PERMISSION_DENIED: a run this endpoint does not write to.
[[noreturn]] void permission_denied(const std::string& message);
// 507: the request was fine but could not be stored (disk full, a limit of
// this run). Not a status the MLflow client retries, so a script is told at
// once instead of stalling in back-off.
[[noreturn]] void cannot_store(const std::string& message);

}  // namespace amlrun::tracking
