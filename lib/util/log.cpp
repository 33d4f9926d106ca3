#include "lib/util/log.hpp"

#include <unistd.h>

#include <string>

namespace amlrun::util {

static int g_message_fd = 2;

void set_message_fd(int fd) {
  g_message_fd = fd;
}

static void emit(std::string_view prefix, std::string_view message) {
  std::string line;
  line.reserve(prefix.size() + message.size() + 1);
  line += prefix;
  line += message;
  line += '\n';
  // One write call per message, so lines from several processes don't mix.
  ssize_t ignored = ::write(g_message_fd, line.data(), line.size());
  (void)ignored;
}

void warn(std::string_view message) {
  emit("amlrun: warning: ", message);
}
void notice(std::string_view message) {
  emit("amlrun: ", message);
}

}  // namespace amlrun::util
