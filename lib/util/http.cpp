#include "lib/util/http.hpp"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <fmt/format.h>
#include <mutex>
#include <thread>

#include "lib/util/fs.hpp"
#include "lib/util/names.hpp"

namespace amlrun::util {

namespace {

struct Transfer {
  int fd = -1;
  std::uint64_t offset = 0;  // bytes already in the file before this attempt
  std::uint64_t received = 0;
  std::uint64_t max_bytes = 0;
  bool too_large = false;
  bool write_failed = false;
  bool truncated_for_restart = false;
  CURL* curl = nullptr;
};

size_t write_callback(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  size_t bytes = size * count;
  if (!transfer->truncated_for_restart && transfer->offset > 0) {
    // The server ignored our Range request (200 instead of 206): start over.
    long status = 0;
    curl_easy_getinfo(transfer->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status == 200) {
      if (::ftruncate(transfer->fd, 0) != 0 || ::lseek(transfer->fd, 0, SEEK_SET) < 0) {
        transfer->write_failed = true;
        return 0;
      }
      transfer->offset = 0;
    }
    transfer->truncated_for_restart = true;
  }
  if (transfer->offset + transfer->received + bytes > transfer->max_bytes) {
    transfer->too_large = true;
    return 0;
  }
  try {
    write_all(transfer->fd, std::string_view(data, bytes), "write");
  } catch (const Error&) {
    transfer->write_failed = true;
    return 0;
  }
  transfer->received += bytes;
  return bytes;
}

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

bool retryable_status(long status) {
  return status == 408 || status == 429 || status >= 500;
}

}  // namespace

std::string file_name_from_url(const std::string& url) {
  std::string path = url;
  auto scheme = path.find("://");
  if (scheme != std::string::npos) {
    auto slash = path.find('/', scheme + 3);
    path = slash == std::string::npos ? "" : path.substr(slash);
  }
  path = path.substr(0, path.find_first_of("?#"));
  while (!path.empty() && path.back() == '/') path.pop_back();
  std::string last = path.substr(path.find_last_of('/') + 1);
  std::string decoded;
  for (std::size_t i = 0; i < last.size(); ++i) {
    if (last[i] == '%' && i + 2 < last.size() && std::isxdigit(static_cast<unsigned char>(last[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(last[i + 2]))) {
      decoded.push_back(static_cast<char>(std::stoi(last.substr(i + 1, 2), nullptr, 16)));
      i += 2;
    } else {
      decoded.push_back(last[i]);
    }
  }
  std::string name = sanitize_name(decoded);
  return name.empty() ? "download" : name;
}

DownloadResult http_download(const std::string& url, const std::filesystem::path& destination,
                             const DownloadOptions& options) {
  global_init();
  std::filesystem::path part = destination;
  part += ".part";
  DownloadResult result;
  std::chrono::milliseconds backoff = options.first_backoff;
  std::string last_error;
  for (int attempt = 1; attempt <= options.max_attempts; ++attempt) {
    result.attempts = attempt;
    UniqueFd fd(::open(part.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    if (!fd) throw DownloadError(errno_message(fmt::format("cannot create {}", part.string()), errno));
    struct stat st {};
    ::fstat(fd.get(), &st);
    Transfer transfer;
    transfer.fd = fd.get();
    transfer.offset = static_cast<std::uint64_t>(st.st_size);
    transfer.max_bytes = options.max_bytes;
    ::lseek(fd.get(), 0, SEEK_END);

    CURL* curl = curl_easy_init();
    if (!curl) throw DownloadError("libcurl: cannot create a handle");
    transfer.curl = curl;
    char error_buffer[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, options.connect_timeout_seconds);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, options.stall_timeout_seconds);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "amlrun/" AMLRUN_VERSION);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_callback);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &transfer);
    curl_easy_setopt(curl, CURLOPT_FAILONERROR, 0L);
    if (transfer.offset > 0) {
      curl_easy_setopt(curl, CURLOPT_RESUME_FROM_LARGE, static_cast<curl_off_t>(transfer.offset));
      ++result.resumed;
    }
    CURLcode code = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(curl);
    result.http_status = status;

    if (transfer.too_large) {
      ::unlink(part.c_str());
      throw DownloadError(fmt::format("download of {} exceeds the size limit of {} bytes", url,
                                      options.max_bytes));
    }
    if (transfer.write_failed) {
      throw DownloadError(fmt::format("download of {}: cannot write {}", url, part.string()));
    }
    bool ok_status = status == 200 || status == 206;
    if (code == CURLE_OK && ok_status) {
      if (::fsync(fd.get()) != 0 || ::rename(part.c_str(), destination.c_str()) != 0) {
        throw DownloadError(errno_message(fmt::format("cannot save {}", destination.string()), errno));
      }
      struct stat done {};
      ::stat(destination.c_str(), &done);
      result.bytes = static_cast<std::uint64_t>(done.st_size);
      return result;
    }
    if (status == 416 && transfer.offset > 0) {
      // Our partial file does not fit the resource any more: start over.
      ::ftruncate(fd.get(), 0);
      last_error = "HTTP 416 on resume; restarting from the beginning";
    } else if (code == CURLE_OK) {
      if (status > 0 && status < 500 && !retryable_status(status)) {
        ::unlink(part.c_str());
        throw DownloadError(fmt::format("download of {} failed: HTTP {}", url, status));
      }
      ::ftruncate(fd.get(), static_cast<off_t>(transfer.offset));  // drop the error body
      last_error = fmt::format("HTTP {}", status);
    } else {
      last_error = error_buffer[0] ? error_buffer : curl_easy_strerror(code);
      if (code == CURLE_UNSUPPORTED_PROTOCOL || code == CURLE_URL_MALFORMAT) {
        ::unlink(part.c_str());
        throw DownloadError(fmt::format("download of {} failed: {}", url, last_error));
      }
    }
    if (attempt < options.max_attempts) {
      if (options.on_retry) {
        options.on_retry(fmt::format("attempt {} of {} failed ({}); retrying in {} ms", attempt,
                                     options.max_attempts, last_error, backoff.count()));
      }
      std::this_thread::sleep_for(backoff);
      backoff *= 2;
    }
  }
  throw DownloadError(fmt::format("download of {} failed after {} attempts: {}", url,
                                  options.max_attempts, last_error));
}

}  // namespace amlrun::util
