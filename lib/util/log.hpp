#pragma once
// Messages for people on stderr, one prefix style for the whole tool.
#include <string_view>

namespace amlrun::util {

void warn(std::string_view message);    // "amlrun: warning: ..."
void notice(std::string_view message);  // "amlrun: ..."

// Tests and the supervisor redirect these; default is stderr.
void set_message_fd(int fd);

}  // namespace amlrun::util
