#include "lib/util/http.hpp"

#include <curl/curl.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cctype>
#include <thread>

#include "lib/util/fs.hpp"
#include "lib/util/names.hpp"

namespace amlrun::util {

namespace {

// libcurl is loaded when the first download starts, not linked: it pulls in
// some 28 shared libraries (TLS, Kerberos, LDAP, ...) whose loading cost
// 2.5 ms at every start of amlrun (measured with hyperfine), and amlrun starts
// twice per submit while only runs with http(s) inputs download anything.
struct Curl {
  decltype(&curl_global_init) global_init;
  decltype(&curl_easy_init) easy_init;
  CURLcode (*easy_setopt)(CURL*, CURLoption, ...);
  CURLcode (*easy_getinfo)(CURL*, CURLINFO, ...);
  decltype(&curl_easy_perform) easy_perform;
  decltype(&curl_easy_cleanup) easy_cleanup;
  decltype(&curl_easy_strerror) easy_strerror;
};

const Curl& curl_library() {
  static const Curl library = [] {
    void* handle = ::dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
      throw DownloadError(
          fmt::format("downloads need libcurl, which cannot be loaded ({}); "
                      "install it with apt-get install libcurl4",
                      ::dlerror()));
    }
    auto symbol = [&](const char* name) {
      void* address = ::dlsym(handle, name);
      if (!address) throw DownloadError(fmt::format("libcurl.so.4 lacks {}", name));
      return address;
    };
    Curl c;
    c.global_init = reinterpret_cast<decltype(c.global_init)>(symbol("curl_global_init"));
    c.easy_init = reinterpret_cast<decltype(c.easy_init)>(symbol("curl_easy_init"));
    c.easy_setopt = reinterpret_cast<decltype(c.easy_setopt)>(symbol("curl_easy_setopt"));
    c.easy_getinfo = reinterpret_cast<decltype(c.easy_getinfo)>(symbol("curl_easy_getinfo"));
    c.easy_perform = reinterpret_cast<decltype(c.easy_perform)>(symbol("curl_easy_perform"));
    c.easy_cleanup = reinterpret_cast<decltype(c.easy_cleanup)>(symbol("curl_easy_cleanup"));
    c.easy_strerror = reinterpret_cast<decltype(c.easy_strerror)>(symbol("curl_easy_strerror"));
    c.global_init(CURL_GLOBAL_DEFAULT);
    return c;
  }();
  return library;
}

struct Transfer {
  int fd = -1;
  std::uint64_t offset = 0;  // bytes already in the file before this attempt
  std::uint64_t received = 0;
  std::uint64_t max_bytes = 0;
  bool too_large = false;
  bool write_failed = false;
  bool truncated_for_restart = false;
  CURL* curl = nullptr;
  const std::function<bool()>* should_stop = nullptr;
};

// Aborts the transfer (CURLE_ABORTED_BY_CALLBACK) once the caller asks.
int progress_callback(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* transfer = static_cast<Transfer*>(user);
  return transfer->should_stop && *transfer->should_stop && (*transfer->should_stop)() ? 1 : 0;
}

size_t write_callback(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  size_t bytes = size * count;
  if (!transfer->truncated_for_restart && transfer->offset > 0) {
    // The server ignored our Range request (200 instead of 206): start over.
    long status = 0;
    curl_library().easy_getinfo(transfer->curl, CURLINFO_RESPONSE_CODE, &status);
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
    if (last[i] == '%' && i + 2 < last.size() &&
        std::isxdigit(static_cast<unsigned char>(last[i + 1])) &&
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
  const Curl& curl_api = curl_library();
  std::filesystem::path part = destination;
  part += ".part";
  DownloadResult result;
  std::chrono::milliseconds backoff = options.first_backoff;
  std::string last_error;
  for (int attempt = 1; attempt <= options.max_attempts; ++attempt) {
    result.attempts = attempt;
    UniqueFd fd(::open(part.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    if (!fd)
      throw DownloadError(errno_message(fmt::format("cannot create {}", part.string()), errno));
    struct stat st {};
    ::fstat(fd.get(), &st);
    Transfer transfer;
    transfer.fd = fd.get();
    transfer.offset = static_cast<std::uint64_t>(st.st_size);
    transfer.max_bytes = options.max_bytes;
    transfer.should_stop = &options.should_stop;
    ::lseek(fd.get(), 0, SEEK_END);

    CURL* curl = curl_api.easy_init();
    if (!curl) throw DownloadError("libcurl: cannot create a handle");
    transfer.curl = curl;
    char error_buffer[CURL_ERROR_SIZE] = {0};
    curl_api.easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_api.easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_api.easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_api.easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_api.easy_setopt(curl, CURLOPT_MAXREDIRS, 10L);
    curl_api.easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, options.connect_timeout_seconds);
    curl_api.easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_api.easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, options.stall_timeout_seconds);
    curl_api.easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_api.easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);
    curl_api.easy_setopt(curl, CURLOPT_USERAGENT, "amlrun/" AMLRUN_VERSION);
    curl_api.easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_callback);
    curl_api.easy_setopt(curl, CURLOPT_WRITEDATA, &transfer);
    curl_api.easy_setopt(curl, CURLOPT_FAILONERROR, 0L);
    if (options.should_stop) {
      curl_api.easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, progress_callback);
      curl_api.easy_setopt(curl, CURLOPT_XFERINFODATA, &transfer);
      curl_api.easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    }
    if (transfer.offset > 0) {
      curl_api.easy_setopt(curl, CURLOPT_RESUME_FROM_LARGE,
                           static_cast<curl_off_t>(transfer.offset));
      ++result.resumed;
    }
    CURLcode code = curl_api.easy_perform(curl);
    long status = 0;
    curl_api.easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_api.easy_cleanup(curl);
    result.http_status = status;

    auto stopped = [&] { return options.should_stop && options.should_stop(); };
    if (code == CURLE_ABORTED_BY_CALLBACK || stopped()) {
      throw DownloadError(fmt::format("download of {} stopped", url));
    }
    if (transfer.too_large) {
      ::unlink(part.c_str());
      throw DownloadError(
          fmt::format("download of {} exceeds the size limit of {} bytes", url, options.max_bytes));
    }
    if (transfer.write_failed) {
      throw DownloadError(fmt::format("download of {}: cannot write {}", url, part.string()));
    }
    bool ok_status = status == 200 || status == 206;
    if (code == CURLE_OK && ok_status) {
      if (::fsync(fd.get()) != 0 || ::rename(part.c_str(), destination.c_str()) != 0) {
        throw DownloadError(
            errno_message(fmt::format("cannot save {}", destination.string()), errno));
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
      last_error = error_buffer[0] ? error_buffer : curl_api.easy_strerror(code);
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
      // In small steps, so a stop request is seen within 50 ms.
      for (auto waited = std::chrono::milliseconds(0); waited < backoff && !stopped();
           waited += std::chrono::milliseconds(50)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      backoff *= 2;
    }
  }
  throw DownloadError(fmt::format("download of {} failed after {} attempts: {}", url,
                                  options.max_attempts, last_error));
}

}  // namespace amlrun::util
