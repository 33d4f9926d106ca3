#pragma once
// The `ssh:` key of a Slurm target: how a machine without Slurm reaches the
// cluster's login node.
//
//   ssh: login.example.org            # a host or an alias of ~/.ssh/config
//   ssh: {host: login, user: alice, port: 22, identity_file: ~/.ssh/id_ed25519,
//         proxy_jump: bastion, config_file: ~/.ssh/config,
//         options: [ServerAliveInterval=15]}
//
// Every value ends up in ssh's argv, never in a shell line; a value that
// ssh would read as an option (a leading '-') is refused here.
#include <optional>
#include <string>
#include <vector>

#include "lib/spec/reader.hpp"

namespace amlrun::compute {

struct SshSettings {
  std::string host;
  std::string user;
  std::optional<int> port;
  std::string identity_file;  // as written; '~/' is the user's home, at use
  std::string proxy_jump;
  std::string config_file;           // as written; '~/' likewise
  std::vector<std::string> options;  // Key=Value, given to ssh as -o
};

// Reads `ssh:` of the target map `target` (a host string or a map); nullopt
// when absent. Problems go to `diagnostics` at their line and column.
std::optional<SshSettings> read_ssh_settings(spec::MapReader& target,
                                             spec::Diagnostics& diagnostics);

// The options amlrun sets itself for every connection; `options:` may not
// give them (the message says why).
const char* ssh_option_owned_by_amlrun(std::string_view key);

}  // namespace amlrun::compute
