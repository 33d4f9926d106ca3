#include "lib/snapshot/mounts.hpp"

#include <linux/magic.h>
#include <sys/sysmacros.h>

#include <array>
#include <charconv>
#include <utility>

#include "lib/util/fs.hpp"

namespace amlrun::snapshot {

namespace {

// tmpfs and ramfs are not here: they hold real files (/tmp, /dev/shm, a
// source tree someone unpacked into memory).
constexpr std::array<std::pair<std::string_view, std::uint64_t>, 19> k_virtual = {{
    {"proc", PROC_SUPER_MAGIC},
    {"sysfs", SYSFS_MAGIC},
    {"devtmpfs", 0},  // reports TMPFS_MAGIC to statfs: known by mountinfo only
    {"devpts", DEVPTS_SUPER_MAGIC},
    {"cgroup", CGROUP_SUPER_MAGIC},
    {"cgroup2", CGROUP2_SUPER_MAGIC},
    {"debugfs", DEBUGFS_MAGIC},
    {"tracefs", TRACEFS_MAGIC},
    {"securityfs", SECURITYFS_MAGIC},
    {"selinuxfs", SELINUX_MAGIC},
    {"pstore", PSTOREFS_MAGIC},
    {"efivarfs", EFIVARFS_MAGIC},
    {"bpf", BPF_FS_MAGIC},
    {"configfs", 0x62656570},
    {"mqueue", 0x19800202},
    {"hugetlbfs", HUGETLBFS_MAGIC},
    {"binfmt_misc", BINFMTFS_MAGIC},
    {"fusectl", 0x65735543},
    {"nsfs", NSFS_MAGIC},
}};

}  // namespace

std::map<dev_t, std::string> parse_mountinfo(std::string_view text) {
  // "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw": the
  // third field is the device, the first after " - " the type.
  std::map<dev_t, std::string> types;
  while (!text.empty()) {
    std::size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    std::size_t first = line.find(' ');
    std::size_t second = first == std::string_view::npos ? first : line.find(' ', first + 1);
    std::size_t third = second == std::string_view::npos ? second : line.find(' ', second + 1);
    std::size_t separator = line.find(" - ");
    if (third == std::string_view::npos || separator == std::string_view::npos) continue;
    std::string_view device = line.substr(second + 1, third - second - 1);
    std::size_t colon = device.find(':');
    unsigned major = 0;
    unsigned minor = 0;
    if (colon == std::string_view::npos ||
        std::from_chars(device.data(), device.data() + colon, major).ec != std::errc() ||
        std::from_chars(device.data() + colon + 1, device.data() + device.size(), minor).ec !=
            std::errc()) {
      continue;
    }
    std::string_view rest = line.substr(separator + 3);
    types[makedev(major, minor)] = std::string(rest.substr(0, rest.find(' ')));
  }
  return types;
}

std::string MountTable::type_of(dev_t device) {
  std::call_once(m_loaded, [this] {
    try {
      m_types = parse_mountinfo(util::read_file("/proc/self/mountinfo"));
    } catch (const std::exception&) {
      // No /proc (a chroot, a container without it): statfs answers instead.
    }
  });
  auto it = m_types.find(device);
  return it == m_types.end() ? std::string() : it->second;
}

std::string filesystem_name_of_magic(std::uint64_t magic) {
  for (const auto& [name, known] : k_virtual) {
    if (known != 0 && known == magic) return std::string(name);
  }
  return {};
}

bool is_virtual_filesystem(std::string_view type) {
  for (const auto& [name, magic] : k_virtual) {
    if (name == type) return true;
  }
  return false;
}

}  // namespace amlrun::snapshot
