#pragma once
// Which mounts a snapshot walk must not enter: the kernel's virtual trees
// (proc, sysfs, devtmpfs, cgroup, ...) hold no source code, are huge, and
// change while they are read (a process exits and its /proc entry is gone).
// A walk crossing into another filesystem asks here, by device number.
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace amlrun::snapshot {

// The filesystem type of each mount, from /proc/self/mountinfo, read on the
// first question. Safe to ask from many threads.
class MountTable {
 public:
  // "proc", "ext4", ...; "" when the device is not a mount listed there (no
  // /proc, a btrfs subvolume) and the caller must ask statfs instead.
  std::string type_of(dev_t device);

 private:
  std::once_flag m_loaded;
  std::map<dev_t, std::string> m_types;
};

// Parses mountinfo text (proc(5)): device "major:minor" → filesystem type.
std::map<dev_t, std::string> parse_mountinfo(std::string_view text);

// The name of a filesystem from its statfs magic, for the virtual ones
// (is_virtual_filesystem); "" for any other.
std::string filesystem_name_of_magic(std::uint64_t magic);

// True for the kernel's virtual filesystems a snapshot skips.
bool is_virtual_filesystem(std::string_view type);

}  // namespace amlrun::snapshot
