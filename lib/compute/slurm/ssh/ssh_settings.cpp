#include "lib/compute/slurm/ssh/ssh_settings.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "lib/util/strings.hpp"

namespace amlrun::compute {

namespace {

struct OwnedOption {
  const char* key;
  const char* why;
};

// Compared case-insensitively, as ssh reads option names.
const OwnedOption k_owned[] = {
    {"batchmode", "amlrun never waits for a password or a prompt (BatchMode=yes)"},
    {"controlmaster", "amlrun keeps its own multiplexed connection"},
    {"controlpath", "amlrun keeps its own multiplexed connection"},
    {"controlpersist", "amlrun keeps its own multiplexed connection"},
    {"escapechar", "amlrun's streams are binary"},
    {"requesttty", "amlrun's streams are binary"},
    {"forwardagent", "a login node is not given your agent"},
    {"localcommand", "it runs a command on this machine: put it in your ssh config file"},
    {"permitlocalcommand", "it runs a command on this machine: put it in your ssh config file"},
    {"proxycommand", "it runs a command on this machine: put it in your ssh config file"},
    {"remotecommand", "amlrun chooses the command"},
    {"sessiontype", "amlrun chooses the command"},
    {"stdinnull", "amlrun's streams use standard input"},
    {"forkafterauthentication", "amlrun manages the connection's processes"},
};

bool is_word(std::string_view text) {
  if (text.empty() || text.front() == '-') return false;
  return std::none_of(text.begin(), text.end(),
                      [](unsigned char c) { return c <= ' ' || c == 0x7f; });
}

bool has_control(std::string_view text) {
  return std::any_of(text.begin(), text.end(),
                     [](unsigned char c) { return c < ' ' || c == 0x7f; });
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

const char* ssh_option_owned_by_amlrun(std::string_view key) {
  std::string name = lower(key);
  for (const auto& owned : k_owned) {
    if (name == owned.key) return owned.why;
  }
  return nullptr;
}

std::optional<SshSettings> read_ssh_settings(spec::MapReader& target,
                                             spec::Diagnostics& diagnostics) {
  auto node = target.node("ssh");
  if (!node) return std::nullopt;
  std::string path = target.key_path("ssh");
  SshSettings settings;
  auto check_word = [&](const spec::Mark& mark, const std::string& key, const std::string& value,
                        const char* what) {
    if (is_word(value)) return true;
    diagnostics.error(mark, key,
                      fmt::format("{} is not a {}: it must be one word without spaces or "
                                  "control characters, not starting with '-'",
                                  util::printable(value), what));
    return false;
  };
  if (node->is_scalar()) {
    if (check_word(node->mark, path, node->value, "host name or ssh config alias")) {
      settings.host = node->value;
    }
    return settings;
  }
  if (!node->is_map()) {
    diagnostics.error(node->mark, path,
                      "expected a host (ssh: login.example.org) or a map (ssh: {host: login, "
                      "user: alice, ...}), not " +
                          node->describe());
    return std::nullopt;
  }
  spec::MapReader ssh(node, path, diagnostics);
  auto word = [&](std::string_view key, const char* what) -> std::string {
    auto value = ssh.string(key);
    if (!value) return "";
    if (!check_word(ssh.node(key)->mark, ssh.key_path(key), *value, what)) return "";
    return *value;
  };
  settings.host = word("host", "host name or ssh config alias");
  settings.user = word("user", "user name");
  if (auto port = ssh.integer("port", 1, 65535)) settings.port = static_cast<int>(*port);
  settings.identity_file = word("identity_file", "file path");
  settings.proxy_jump = word("proxy_jump", "jump host ([user@]host[:port], comma-separated)");
  settings.config_file = word("config_file", "file path");
  auto options_node = ssh.node("options");
  settings.options = ssh.string_list("options");
  for (std::size_t i = 0; i < settings.options.size(); ++i) {
    const std::string& option = settings.options[i];
    auto mark =
        options_node && i < options_node->items.size() ? options_node->items[i]->mark : ssh.mark();
    std::string key = fmt::format("{}[{}]", ssh.key_path("options"), i);
    auto equals = option.find('=');
    std::string name = option.substr(0, equals);
    bool named =
        equals != std::string::npos && equals > 0 &&
        std::all_of(name.begin(), name.end(), [](unsigned char c) { return std::isalnum(c); });
    if (!named || has_control(option)) {
      diagnostics.error(mark, key,
                        fmt::format("{} is not an ssh option: write Name=value, e.g. "
                                    "ServerAliveInterval=15",
                                    util::printable(option)));
    } else if (const char* why = ssh_option_owned_by_amlrun(name)) {
      diagnostics.error(mark, key, fmt::format("'{}' cannot be given here: {}", name, why));
    }
  }
  if (ssh.present() && !ssh.has("host")) {
    diagnostics.error(ssh.mark(), path, "missing 'host': the login node (a name or an alias)");
  }
  ssh.finish();
  return settings;
}

}  // namespace amlrun::compute
