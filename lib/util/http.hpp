#pragma once
// The one place that speaks HTTP (libcurl): downloads of http(s) inputs with
// timeouts, retries with back-off, a size limit and resume.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "lib/util/error.hpp"

namespace amlrun::util {

struct DownloadOptions {
  long connect_timeout_seconds = 15;
  // A transfer slower than 1 byte/s for this long counts as stalled.
  long stall_timeout_seconds = 30;
  int max_attempts = 4;
  std::uint64_t max_bytes = 20ull << 30;
  std::chrono::milliseconds first_backoff{500};
  // Polled while a transfer goes on and between attempts: true abandons the
  // download (DownloadError "stopped").
  std::function<bool()> should_stop;
  // Called after every attempt that will be retried, with a one-line reason.
  std::function<void(const std::string&)> on_retry;
};

struct DownloadResult {
  std::uint64_t bytes = 0;
  int attempts = 0;
  int resumed = 0;  // attempts that continued a partial file with a Range request
  long http_status = 0;
};

class DownloadError : public InfraError {
 public:
  using InfraError::InfraError;
};

// Downloads url into destination (through destination + ".part", renamed when
// complete). A ".part" left by an earlier attempt is resumed. Only http and
// https are allowed, redirects included. Throws DownloadError with the URL and
// the reason (HTTP status, curl error, size limit).
DownloadResult http_download(const std::string& url, const std::filesystem::path& destination,
                             const DownloadOptions& options = {});

// The file name a URL would be saved under: its last path segment without the
// query, percent-decoded, made safe; "download" when there is none.
std::string file_name_from_url(const std::string& url);

}  // namespace amlrun::util
