#include "lib/env/engine_api.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "lib/util/fs.hpp"

namespace amlrun::env {

namespace {

// The socket the docker client would use, when it is a plain unix socket.
std::optional<std::string> engine_socket() {
  // A docker context (chosen here or in the client's config) may name
  // another engine: leave it to the client.
  if (std::getenv("DOCKER_CONTEXT")) return std::nullopt;
  const char* config_dir = std::getenv("DOCKER_CONFIG");
  const char* home = std::getenv("HOME");
  std::string config = config_dir ? std::string(config_dir) + "/config.json"
                       : home     ? std::string(home) + "/.docker/config.json"
                                  : "";
  try {
    if (!config.empty() && ::access(config.c_str(), F_OK) == 0 &&
        util::read_file(config).find("currentContext") != std::string::npos) {
      return std::nullopt;
    }
  } catch (const std::exception&) {
    return std::nullopt;
  }
  const char* host = std::getenv("DOCKER_HOST");
  if (!host || !*host) return std::string("/var/run/docker.sock");
  std::string value = host;
  if (value.rfind("unix://", 0) == 0) return value.substr(7);
  return std::nullopt;
}

}  // namespace

std::optional<int> docker_engine_status(const std::string& path) {
  auto found = engine_socket();
  if (!found) return std::nullopt;
  const std::string socket_path = *found;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(address.sun_path)) return std::nullopt;
  socket_path.copy(address.sun_path, socket_path.size());
  util::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return std::nullopt;
  timeval timeout{5, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    return std::nullopt;
  }
  std::string request = "GET " + path + " HTTP/1.0\r\nHost: docker\r\n\r\n";
  if (::send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    return std::nullopt;
  }
  // The status line is all that is read: "HTTP/1.x NNN ...".
  char buffer[64] = {};
  std::size_t got = 0;
  while (got < 12) {
    ssize_t n = ::recv(fd.get(), buffer + got, sizeof(buffer) - 1 - got, 0);
    if (n <= 0) return std::nullopt;
    got += static_cast<std::size_t>(n);
  }
  std::string status(buffer, got);
  if (status.rfind("HTTP/1.", 0) != 0 || status[8] != ' ') return std::nullopt;
  int code = std::atoi(status.substr(9, 3).c_str());
  if (code < 100 || code > 599) return std::nullopt;
  return code;
}

}  // namespace amlrun::env
