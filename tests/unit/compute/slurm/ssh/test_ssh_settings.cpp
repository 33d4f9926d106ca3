// The `ssh:` key of a Slurm target: a host, or a map whose every value ends
// up in ssh's argv (never a shell line), checked at file:line:column.
#include <catch2/catch.hpp>

#include "lib/compute/compute_target.hpp"
#include "lib/compute/slurm/settings.hpp"
#include "lib/compute/slurm/ssh/ssh_connection.hpp"
#include "lib/compute/slurm/ssh/ssh_target.hpp"
#include "lib/util/strings.hpp"
#include "tests/unit/test_support.hpp"

using namespace amlrun;
using unit_test::message_of;
using unit_test::TempDir;

namespace {

compute::SlurmSettings settings_from(const TempDir& dir, const std::string& ssh_yaml) {
  auto config = workspace::load_config(dir.write(
      "config.yml",
      "compute:\n  cluster:\n    type: slurm\n    shared_dir: /shared/amlrun\n" + ssh_yaml));
  REQUIRE(config.compute.size() == 1);
  return compute::read_slurm_settings(config.compute[0]);
}

// The diagnostics' own lines (file:line:col: key: message), without the
// source excerpts under each (tests/unit/compute/slurm/test_settings.cpp
// checks those).
std::string error_of(const TempDir& dir, const std::string& ssh_yaml) {
  std::string text = message_of([&] { settings_from(dir, ssh_yaml); });
  std::string file = (dir.path / "config.yml").string();
  std::string out;
  for (const auto& line : util::split(text, '\n')) {
    if (!line.starts_with(file + ":")) continue;
    if (!out.empty()) out += "\n";
    out += line;
  }
  return out;
}

}  // namespace

TEST_CASE("ssh: a host alone") {
  TempDir dir;
  auto settings = settings_from(dir, "    ssh: login.example.org\n");
  REQUIRE(settings.ssh);
  CHECK(settings.ssh->host == "login.example.org");
  CHECK(settings.ssh->user.empty());
  CHECK_FALSE(settings.ssh->port);
}

TEST_CASE("ssh: every key of the map is read") {
  TempDir dir;
  auto settings = settings_from(
      dir,
      "    ssh: {host: login, user: alice, port: 2222, identity_file: ~/.ssh/id_ed25519,\n"
      "          proxy_jump: bastion, config_file: ~/.ssh/config,\n"
      "          options: [ServerAliveInterval=15, Compression=yes]}\n");
  REQUIRE(settings.ssh);
  CHECK(settings.ssh->host == "login");
  CHECK(settings.ssh->user == "alice");
  CHECK(settings.ssh->port == 2222);
  CHECK(settings.ssh->identity_file == "~/.ssh/id_ed25519");
  CHECK(settings.ssh->proxy_jump == "bastion");
  CHECK(settings.ssh->config_file == "~/.ssh/config");
  CHECK(settings.ssh->options ==
        std::vector<std::string>{"ServerAliveInterval=15", "Compression=yes"});
}

TEST_CASE("without ssh: the target is the login-node kind") {
  TempDir dir;
  CHECK_FALSE(settings_from(dir, "").ssh);
}

TEST_CASE("ssh: mistakes are refused at their line and column") {
  TempDir dir;
  auto file = (dir.path / "config.yml").string();
  CHECK(error_of(dir, "    ssh: {hots: login}\n") ==
        file + ":5:10: compute.cluster.ssh: missing 'host': the login node (a name or an alias)\n" +
            file + ":5:11: compute.cluster.ssh.hots: unknown key 'hots' (did you mean 'host'?)");
  CHECK(error_of(dir, "    ssh: -oProxyCommand=evil\n") ==
        file +
            ":5:10: compute.cluster.ssh: '-oProxyCommand=evil' is not a host name or ssh config "
            "alias: it must be one word without spaces or control characters, not starting with "
            "'-'");
  CHECK(error_of(dir, "    ssh: {host: login, options: [ProxyCommand=nc %h %p]}\n") ==
        file +
            ":5:34: compute.cluster.ssh.options[0]: 'ProxyCommand' cannot be given here: it runs "
            "a command on this machine: put it in your ssh config file");
  CHECK(error_of(dir, "    ssh: {host: login, options: [ControlPath=/tmp/x]}\n") ==
        file +
            ":5:34: compute.cluster.ssh.options[0]: 'ControlPath' cannot be given here: amlrun "
            "keeps its own multiplexed connection");
  CHECK(error_of(dir, "    ssh: {host: login, options: [ServerAliveInterval 15]}\n") ==
        file +
            ":5:34: compute.cluster.ssh.options[0]: 'ServerAliveInterval 15' is not an ssh "
            "option: write Name=value, e.g. ServerAliveInterval=15");
  CHECK(error_of(dir, "    ssh: {host: login, port: 70000}\n") ==
        file + ":5:30: compute.cluster.ssh.port: must be between 1 and 65535, got 70000");
  CHECK(error_of(dir, "    ssh: [login]\n") ==
        file +
            ":5:10: compute.cluster.ssh: expected a host (ssh: login.example.org) or a map (ssh: "
            "{host: login, user: alice, ...}), not a list");
}

TEST_CASE("a slurm target with ssh: is reached over ssh") {
  TempDir dir;
  dir.write(".amlrun/config.yml",
            "compute:\n  cluster: {type: slurm, shared_dir: /shared, ssh: login}\n");
  auto workspace = workspace::Workspace(dir.path / ".amlrun",
                                        workspace::load_config(dir.path / ".amlrun/config.yml"));
  auto target = compute::make_target(workspace, "cluster");
  CHECK(dynamic_cast<compute::SshSlurmTarget*>(target.get()) != nullptr);
  CHECK(target->type() == "slurm");
}

TEST_CASE("ssh's failures are explained with what to do") {
  std::string who = "compute target 'c' (ssh login)";
  CHECK(compute::explain_ssh_failure(who, "Host key verification failed.\n") ==
        "compute target 'c' (ssh login): the login node's host key is not known to ssh, and "
        "amlrun never accepts one by itself; connect once with ssh to check the key and add it "
        "to known_hosts");
  CHECK(compute::explain_ssh_failure(
            who,
            "@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@\nHost key verification "
            "failed.\n")
            .starts_with("compute target 'c' (ssh login): the login node's host key has CHANGED"));
  CHECK(compute::explain_ssh_failure(who, "root@10.0.0.1: Permission denied (publickey).\n") ==
        "compute target 'c' (ssh login): authentication was refused (root@10.0.0.1: Permission "
        "denied (publickey).); amlrun never asks for a password: load your key into ssh-agent, "
        "or set identity_file (and user) under ssh: in the target");
  CHECK(compute::explain_ssh_failure(
            who, "ssh: connect to host 10.0.0.9 port 22: Connection timed out\n") ==
        "compute target 'c' (ssh login): the login node cannot be reached (ssh: connect to host "
        "10.0.0.9 port 22: Connection timed out); check the host and port under ssh:, and that "
        "you can reach it (VPN, bastion: proxy_jump)");
  CHECK(compute::explain_ssh_failure(who, "something odd\n") ==
        "compute target 'c' (ssh login): ssh failed: something odd");
}
