// take(), materialize() and the store, on real files.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/sysmacros.h>
#include <sys/un.h>

#include <fmt/format.h>
#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

#include "helpers.hpp"
#include "lib/snapshot/mounts.hpp"
#include "lib/snapshot/stat_cache.hpp"
#include "lib/util/hash.hpp"
#include "lib/util/strings.hpp"

using namespace amlrun;
namespace fs = std::filesystem;
using namespace snapshot_test;
using snapshot::EntryType;

namespace {

struct stat lstat_of(const fs::path& path) {
  struct stat st {};
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  return st;
}

fs::path object_path(const Workspace& workspace, const std::string& content,
                     bool executable = false) {
  std::string sha = util::sha256_hex(content);
  return workspace.store / "objects" / sha.substr(0, 2) / (sha + (executable ? ".x" : ""));
}

void make_small_tree(const fs::path& root) {
  write_file(root / "train.py", "print('train')\n");
  write_file(root / "run.sh", "#!/bin/sh\necho run\n", 0755);
  write_file(root / "pkg/__init__.py", "");
  write_file(root / "pkg/model.py", "class Model: pass\n");
  fs::create_directories(root / "empty");
}

}  // namespace

TEST_CASE("the same tree gets the same id; only content changes it", "[snapshot]") {
  Workspace workspace;
  make_small_tree(workspace.source);
  auto first = workspace.take();
  CHECK(first.id.size() == 64);
  CHECK(first.files == 4);
  CHECK(first.directories == 2);
  CHECK(first.bytes == 15 + 19 + 0 + 18);

  // A second copy of the tree elsewhere, made at another time: same id.
  Workspace other;
  make_small_tree(other.source);
  CHECK(other.take().id == first.id);

  // Times alone do not change it.
  struct timespec old_times[2] = {{1000, 0}, {1000, 0}};
  REQUIRE(::utimensat(AT_FDCWD, (workspace.source / "train.py").c_str(), old_times, 0) == 0);
  CHECK(workspace.take().id == first.id);

  // Content does, and so does the executable bit.
  write_file(workspace.source / "train.py", "print('train!')\n");
  auto changed = workspace.take();
  CHECK(changed.id != first.id);
  ::chmod((workspace.source / "train.py").c_str(), 0755);
  CHECK(workspace.take().id != changed.id);
}

TEST_CASE("the manifest records files, directories, symlinks and the executable bit",
          "[snapshot]") {
  Workspace workspace;
  make_small_tree(workspace.source);
  fs::create_symlink("train.py", workspace.source / "link");
  auto snapshot = workspace.take();
  auto manifest = snapshot::read_manifest(workspace.store, snapshot.id);
  REQUIRE(manifest.entries.size() == 7);
  std::vector<std::string> lines;
  for (const auto& entry : manifest.entries) {
    switch (entry.type) {
      case EntryType::directory:
        lines.push_back("d " + entry.path);
        break;
      case EntryType::symlink:
        lines.push_back("l " + entry.path + " -> " + entry.link_target);
        break;
      case EntryType::file:
        lines.push_back(std::string(entry.executable ? "x " : "f ") + entry.path + " " +
                        std::to_string(entry.size) + " " + entry.sha256.substr(0, 8));
        break;
    }
  }
  CHECK(lines == std::vector<std::string>{
                     "d empty", "l link -> train.py", "d pkg", "f pkg/__init__.py 0 e3b0c442",
                     "f pkg/model.py 18 " + util::sha256_hex("class Model: pass\n").substr(0, 8),
                     "x run.sh 19 " + util::sha256_hex("#!/bin/sh\necho run\n").substr(0, 8),
                     "f train.py 15 " + util::sha256_hex("print('train')\n").substr(0, 8)});
  // The id is the sha256 of the stored manifest text.
  CHECK(util::sha256_file(workspace.store / "manifests" / snapshot.id) == snapshot.id);
  // Objects are read-only with the pinned mtime; the executable one is 0555.
  auto plain = lstat_of(object_path(workspace, "print('train')\n"));
  CHECK((plain.st_mode & 07777) == 0444);
  CHECK(plain.st_mtim.tv_sec == 1);
  CHECK((lstat_of(object_path(workspace, "#!/bin/sh\necho run\n", true)).st_mode & 07777) == 0555);
}

TEST_CASE("the stat cache skips unchanged files", "[snapshot][cache]") {
  Workspace workspace;
  for (int i = 0; i < 20; ++i)
    write_file(workspace.source / ("f" + std::to_string(i)), std::string(100 + i, 'x'));
  wait_until_settled(workspace.source);
  auto cold = workspace.take();
  CHECK(cold.hashed_files == 20);
  CHECK(cold.hashed_bytes == cold.bytes);

  auto warm = workspace.take();
  CHECK(warm.id == cold.id);
  CHECK(warm.hashed_files == 0);
  CHECK(warm.hashed_bytes == 0);

  write_file(workspace.source / "f3", "changed");
  auto one_changed = workspace.take();
  CHECK(one_changed.hashed_files == 1);
  CHECK(one_changed.hashed_bytes == 7);
  CHECK(one_changed.id != cold.id);

  // Same size, same mtime, different content: ctime still gives it away.
  wait_until_settled(workspace.source);
  CHECK(workspace.take().hashed_files == 1);  // f3 was racy right after its change
  struct stat before = lstat_of(workspace.source / "f4");
  write_file(workspace.source / "f4", std::string(104, 'y'));
  struct timespec times[2] = {before.st_atim, before.st_mtim};
  REQUIRE(::utimensat(AT_FDCWD, (workspace.source / "f4").c_str(), times, 0) == 0);
  auto sneaky = workspace.take();
  CHECK(sneaky.hashed_files == 1);
  auto manifest = snapshot::read_manifest(workspace.store, sneaky.id);
  for (const auto& entry : manifest.entries) {
    if (entry.path == "f4") CHECK(entry.sha256 == util::sha256_hex(std::string(104, 'y')));
  }
}

TEST_CASE("racy entries are hashed again", "[snapshot][cache]") {
  SECTION("an entry as new as the snapshot that recorded it is not trusted") {
    snapshot::FileStat stat;
    stat.size = 3;
    stat.mtime_ns = 5'000'000'123;
    stat.ctime_ns = 5'000'000'123;
    std::string sha = util::sha256_hex("abc");
    TempDir temp;
    auto save = [&](std::int64_t started_ns) {
      snapshot::StatCache::save(temp.path / "cache", started_ns, {{"a", stat, sha}});
    };
    save(/*started_ns=*/5'000'000'123);
    CHECK_FALSE(snapshot::StatCache::load(temp.path / "cache").find_fresh("a", stat).has_value());
    save(/*started_ns=*/5'000'000'124);
    CHECK(snapshot::StatCache::load(temp.path / "cache").find_fresh("a", stat) == sha);
    CHECK_FALSE(snapshot::StatCache::load(temp.path / "cache").find_fresh("b", stat).has_value());
    // Whole-second timestamps (a coarse filesystem) need a two-second margin.
    stat.ctime_ns = 5'000'000'000;
    save(/*started_ns=*/6'000'000'000);
    CHECK_FALSE(snapshot::StatCache::load(temp.path / "cache").find_fresh("a", stat).has_value());
    save(/*started_ns=*/7'000'000'001);
    CHECK(snapshot::StatCache::load(temp.path / "cache").find_fresh("a", stat).has_value());
  }
  SECTION("a file with a future mtime is hashed on every snapshot") {
    Workspace workspace;
    write_file(workspace.source / "future", "f");
    write_file(workspace.source / "settled", "s");
    struct timespec future[2] = {{0, UTIME_OMIT}, {::time(nullptr) + 3600, 0}};
    REQUIRE(::utimensat(AT_FDCWD, (workspace.source / "future").c_str(), future, 0) == 0);
    wait_until_settled(workspace.source / "settled");
    workspace.take();
    CHECK(workspace.take().hashed_files == 1);
    CHECK(workspace.take().hashed_files == 1);
  }
}

TEST_CASE("a corrupt or truncated stat cache is ignored and rebuilt", "[snapshot][cache]") {
  Workspace workspace;
  for (int i = 0; i < 3; ++i)
    write_file(workspace.source / ("f" + std::to_string(i)), "data " + std::to_string(i));
  wait_until_settled(workspace.source);
  auto cold = workspace.take();
  fs::path cache_dir = workspace.store / "cache";
  REQUIRE(std::distance(fs::directory_iterator(cache_dir), fs::directory_iterator()) == 1);
  fs::path cache_file = fs::directory_iterator(cache_dir)->path();
  std::string intact = read_text(cache_file);
  REQUIRE(workspace.take().hashed_files == 0);

  // Cut at every byte, and flip every byte: never an error, never a wrong
  // hash, and the next snapshot finds a good cache again.
  for (std::size_t length = 0; length < intact.size(); ++length) {
    write_file(cache_file, intact.substr(0, length));
    auto snapshot = workspace.take();
    INFO("truncated to " << length << " bytes");
    REQUIRE(snapshot.id == cold.id);
    REQUIRE(snapshot.hashed_files == 3);
    write_file(cache_file, intact);
  }
  for (std::size_t offset = 0; offset < intact.size(); ++offset) {
    std::string corrupt = intact;
    corrupt[offset] = static_cast<char>(corrupt[offset] ^ 0x5a);
    write_file(cache_file, corrupt);
    INFO("byte " << offset << " flipped");
    REQUIRE(workspace.take().id == cold.id);
  }
  CHECK(workspace.take().hashed_files == 0);
  fs::remove(cache_file);
  fs::create_directory(cache_file);  // not even a file
  CHECK(workspace.take().id == cold.id);
}

TEST_CASE("symlinks are stored as links and never followed", "[snapshot][symlink]") {
  Workspace workspace;
  TempDir outside;
  write_file(outside.path / "secret", "outside data");
  write_file(workspace.source / "inside.txt", "inside");
  fs::create_symlink("inside.txt", workspace.source / "to_inside");
  fs::create_symlink(outside.path / "secret", workspace.source / "to_outside_absolute");
  fs::create_symlink("../../../../../../etc/passwd", workspace.source / "to_outside_relative");
  fs::create_symlink(outside.path, workspace.source / "dir_outside");
  fs::create_symlink("missing", workspace.source / "dangling");
  auto snapshot = workspace.take();
  CHECK(snapshot.files == 1);
  CHECK(snapshot.symlinks == 5);
  CHECK(snapshot.hashed_bytes == 6);  // only inside.txt was read
  CHECK_FALSE(fs::exists(object_path(workspace, "outside data")));
  CHECK(workspace.paths(snapshot.id) ==
        std::vector<std::string>{"dangling", "dir_outside", "inside.txt", "to_inside",
                                 "to_outside_absolute", "to_outside_relative"});

  TempDir run;
  snapshot::materialize(workspace.store, snapshot.id, run.path / "wd");
  CHECK(fs::read_symlink(run.path / "wd/to_inside") == "inside.txt");
  CHECK(fs::read_symlink(run.path / "wd/to_outside_absolute") == outside.path / "secret");
  CHECK(fs::read_symlink(run.path / "wd/to_outside_relative") == "../../../../../../etc/passwd");
  CHECK(fs::read_symlink(run.path / "wd/dir_outside") == outside.path);
  CHECK(fs::read_symlink(run.path / "wd/dangling") == "missing");
  CHECK(read_text(outside.path / "secret") == "outside data");
}

TEST_CASE("FIFOs, sockets and devices are skipped with a warning", "[snapshot]") {
  Workspace workspace;
  write_file(workspace.source / "a.txt", "a");
  REQUIRE(::mkfifo((workspace.source / "pipe").c_str(), 0644) == 0);
  int sock = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::string socket_path = (workspace.source / "sock").string();
  REQUIRE(socket_path.size() < sizeof address.sun_path);
  std::copy(socket_path.begin(), socket_path.end(), address.sun_path);
  REQUIRE(::bind(sock, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  auto snapshot = workspace.take();
  ::close(sock);
  CHECK(workspace.paths(snapshot.id) == std::vector<std::string>{"a.txt"});
  std::string src = workspace.source.string();
  std::vector<std::string> warnings = workspace.warnings;
  std::sort(warnings.begin(), warnings.end());  // readdir order is the filesystem's
  CHECK(warnings ==
        std::vector<std::string>{
            "skipping " + src +
                "/pipe: it is a FIFO; only regular files, directories and symlinks are "
                "snapshotted (add it to .amlignore to silence this warning)",
            "skipping " + src +
                "/sock: it is a socket; only regular files, directories and symlinks are "
                "snapshotted (add it to .amlignore to silence this warning)"});

  // An ignored FIFO is not even mentioned.
  write_file(workspace.source / ".amlignore", "pipe\nsock\n");
  workspace.warnings.clear();
  workspace.take();
  CHECK(workspace.warnings.empty());
}

TEST_CASE("an unreadable file or directory is an error naming it", "[snapshot]") {
  // As root, permissions only apply without CAP_DAC_OVERRIDE, so the take
  // runs in a child process that drops it (a no-op for other users).
  Workspace workspace;
  write_file(workspace.source / "ok.txt", "fine");
  write_file(workspace.source / "secret.txt", "hidden", 0000);
  std::string src = workspace.source.string();
  CHECK(without_dac_override([&] { return workspace.take().id; }) ==
        "cannot read " + src +
            "/secret.txt: Permission denied — make it readable or add it to .amlignore");

  fs::remove(workspace.source / "secret.txt");
  write_file(workspace.source / "private/x.txt", "x");
  ::chmod((workspace.source / "private").c_str(), 0000);
  CHECK(without_dac_override([&] { return workspace.take().id; }) ==
        "cannot read directory " + src +
            "/private: Permission denied — make it readable or add it to .amlignore");

  // Ignored: never opened, so no error.
  write_file(workspace.source / ".amlignore", "private/\n");
  std::string id = without_dac_override([&] { return workspace.take().id; });
  CHECK(id.size() == 64);
}

TEST_CASE("ignored directories are not walked", "[snapshot][ignore]") {
  Workspace workspace;
  write_file(workspace.source / ".gitignore", "data/\n");
  write_file(workspace.source / "train.py", "x");
  for (int i = 0; i < 500; ++i)
    write_file(workspace.source / "data" / std::to_string(i % 30) / std::to_string(i), "");
  workspace.options.limits.max_files = 10;
  auto snapshot = workspace.take();  // 500 files would be over the limit
  CHECK(snapshot.files == 2);
}

TEST_CASE(".git, the workspace and the store are never included", "[snapshot]") {
  Workspace workspace;
  write_file(workspace.source / ".git/config", "[core]");
  write_file(workspace.source / "sub/.git", "gitdir: ../.git/modules/sub");
  write_file(workspace.source / ".amlrun/runs/x", "run");
  write_file(workspace.source / "code.py", "code");
  workspace.options.exclude_paths = {workspace.source / "sub/../.amlrun"};
  workspace.options.store_dir = workspace.source / ".amlrun/snapshots";
  workspace.store = workspace.options.store_dir;
  auto snapshot = workspace.take();
  CHECK(workspace.paths(snapshot.id) == std::vector<std::string>{"code.py", "sub"});
  // Taking it again does not pick up the store that now exists inside.
  workspace.options.exclude_paths.clear();
  auto again = workspace.take();
  CHECK(workspace.paths(again.id) ==
        std::vector<std::string>{".amlrun", ".amlrun/runs", ".amlrun/runs/x", "code.py", "sub"});
}

TEST_CASE("limits fail before copying and name the largest entries", "[snapshot][limits]") {
  Workspace workspace;
  for (int i = 0; i < 8; ++i)
    write_file(workspace.source / "data/train" / std::to_string(i), std::string(1000, 'd'));
  for (int i = 0; i < 3; ++i)
    write_file(workspace.source / "data/val" / std::to_string(i), std::string(1000, 'v'));
  write_file(workspace.source / "logs/a.log", std::string(3000, 'l'));
  write_file(workspace.source / "model.pt", std::string(5000, 'm'));
  write_file(workspace.source / "train.py", "print()");
  std::string src = workspace.source.string();

  SECTION("too many files") {
    workspace.options.limits.max_files = 10;
    CHECK(message_of([&] { workspace.take(); }) ==
          "snapshot of " + src +
              ": 14 files, more than the limit of 10; largest directories: "
              "data/ (11 files, 10.7 KiB), data/train/ (8 files, 7.8 KiB), data/val/ (3 files, 2.9 "
              "KiB) — add "
              "them to .amlignore or raise snapshot.max_files in .amlrun/config.yml");
  }
  SECTION("too many bytes") {
    workspace.options.limits.max_bytes = 10000;
    CHECK(message_of([&] { workspace.take(); }) ==
          "snapshot of " + src +
              ": 18.6 KiB in 14 files, more than the limit of 9.8 KiB; largest files: "
              "model.pt (4.9 KiB), logs/a.log (2.9 KiB), data/train/0 (1000 B); largest "
              "directories: data/ (11 files, "
              "10.7 KiB), data/train/ (8 files, 7.8 KiB), data/val/ (3 files, 2.9 KiB) — add them "
              "to .amlignore or "
              "raise snapshot.max_bytes in .amlrun/config.yml");
  }
  SECTION("both") {
    workspace.options.limits.max_files = 10;
    workspace.options.limits.max_bytes = 10000;
    CHECK_THAT(message_of([&] { workspace.take(); }),
               Catch::StartsWith("snapshot of " + src +
                                 ": 14 files and 18.6 KiB, more than the limits of 10 "
                                 "files and 9.8 KiB; largest files: model.pt (4.9 KiB)") &&
                   Catch::EndsWith(
                       "raise snapshot.max_files and snapshot.max_bytes in .amlrun/config.yml"));
  }
  // Nothing was copied into the store.
  std::size_t objects = 0;
  for (const auto& item : fs::recursive_directory_iterator(workspace.store / "objects"))
    objects += item.is_regular_file();
  CHECK(objects == 0);
  CHECK(fs::is_empty(workspace.store / "manifests"));
}

TEST_CASE("a tree far over a limit stops the walk there", "[snapshot][limits]") {
  Workspace workspace;
  workspace.options.threads = 1;  // one directory at a time, so where it stops is fixed
  for (int i = 0; i < 30; ++i)
    write_file(workspace.source / ("f" + std::to_string(i)), std::string(100, 'x'));
  for (int i = 0; i < 5; ++i)
    write_file(workspace.source / "never/walked" / std::to_string(i), std::string(100, 'y'));
  std::string src = workspace.source.string();

  SECTION("files") {
    workspace.options.limits.max_files = 10;
    CHECK(message_of([&] { workspace.take(); }) ==
          "snapshot of " + src +
              ": 30 files, more than the limit of 10 (the walk stopped there, past twice the "
              "limit) — add them to .amlignore or raise snapshot.max_files in "
              ".amlrun/config.yml");
  }
  SECTION("bytes") {
    workspace.options.limits.max_bytes = 1000;
    CHECK(message_of([&] { workspace.take(); }) ==
          "snapshot of " + src +
              ": 2.9 KiB in 30 files, more than the limit of 1000 B (the walk stopped there, past "
              "twice the limit); largest files so far: f0 (100 B), f1 (100 B), f10 (100 B) — add "
              "them to .amlignore or raise snapshot.max_bytes in .amlrun/config.yml");
  }
  SECTION("under twice the limit the whole tree is counted") {
    workspace.options.limits.max_files = 20;
    CHECK(message_of([&] { workspace.take(); }) ==
          "snapshot of " + src +
              ": 35 files, more than the limit of 20; largest directories: never/walked/ (5 "
              "files, 500 B) — add them to .amlignore or raise snapshot.max_files in "
              ".amlrun/config.yml");
  }
}

TEST_CASE("the kernel's virtual filesystems are skipped, tmpfs is not", "[snapshot][mounts]") {
  Workspace workspace;
  write_file(workspace.source / "train.py", "print()\n");
  fs::create_directories(workspace.source / "proc");
  fs::create_directories(workspace.source / "ram");
  std::string result = in_mount_namespace(
      [&] {
        if (::mount("proc", (workspace.source / "proc").c_str(), "proc", 0, nullptr) != 0 ||
            ::mount("tmpfs", (workspace.source / "ram").c_str(), "tmpfs", 0, nullptr) != 0) {
          return k_no_namespace;
        }
        write_file(workspace.source / "ram/data.txt", "in memory\n");
        return std::string();
      },
      [&] {
        auto snapshot = workspace.take();
        return util::join(workspace.paths(snapshot.id), " ") + "\n" +
               util::join(workspace.warnings, "\n");
      });
  if (result == k_no_namespace) {
    WARN("cannot mount proc in a mount namespace here; skipping");
    return;
  }
  CHECK(result == "ram ram/data.txt train.py\nskipping " + workspace.source.string() +
                      "/proc: it is a proc mount, a view of the kernel's state with no files to "
                      "snapshot (add it to .amlignore to silence this warning)");
}

TEST_CASE("mountinfo gives each device its filesystem type", "[snapshot][mounts]") {
  auto types = snapshot::parse_mountinfo(
      "22 27 0:21 / /proc rw,relatime - proc proc rw\n"
      "24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,size=123k\n"
      "27 1 254:0 / / rw,relatime shared:1 master:2 - ext4 /dev/vda rw\n"
      "garbage line\n"
      "30 25 0:27 / /dev/shm rw - tmpfs tmpfs rw");
  CHECK(types == std::map<dev_t, std::string>{{makedev(0, 21), "proc"},
                                              {makedev(0, 6), "devtmpfs"},
                                              {makedev(254, 0), "ext4"},
                                              {makedev(0, 27), "tmpfs"}});
  CHECK(snapshot::is_virtual_filesystem("proc"));
  CHECK(snapshot::is_virtual_filesystem("devtmpfs"));
  CHECK(snapshot::is_virtual_filesystem("cgroup2"));
  CHECK_FALSE(snapshot::is_virtual_filesystem("tmpfs"));
  CHECK_FALSE(snapshot::is_virtual_filesystem("ext4"));
  CHECK(snapshot::filesystem_name_of_magic(0x9fa0) == "proc");
  CHECK(snapshot::filesystem_name_of_magic(0x01021994).empty());  // tmpfs: real files
}

TEST_CASE("a source directory that is a symlink loop is named as such", "[snapshot]") {
  Workspace workspace;
  fs::create_symlink("loop", workspace.temp.path / "loop");
  CHECK(message_of([&] { snapshot::take(workspace.temp.path / "loop", workspace.options); }) ==
        "source directory " + (workspace.temp.path / "loop").string() +
            " is a symbolic link loop: following its links never reaches a directory; point the "
            "link at the real directory");
}

TEST_CASE("a file that keeps changing while it is copied is an error naming it", "[snapshot]") {
  Workspace workspace;
  write_file(workspace.source / "growing.log", std::string(64 << 20, 'g'));
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    int fd = ::open((workspace.source / "growing.log").c_str(), O_WRONLY | O_APPEND);
    while (!stop) {
      if (::write(fd, "more\n", 5) != 5) break;
    }
    ::close(fd);
  });
  std::string message = message_of([&] { workspace.take(); });
  stop = true;
  writer.join();
  CHECK(
      message ==
      workspace.source.string() +
          "/growing.log changed while it was being copied into the snapshot (twice in a row); stop "
          "whatever is writing to it, or add it to .amlignore, and submit again");
  // The half-copied object was not stored under any name.
  CHECK(stray_files(workspace.store).empty());
}

TEST_CASE("materialize copies files and recreates the tree", "[snapshot][materialize]") {
  Workspace workspace;
  make_small_tree(workspace.source);
  fs::create_symlink("pkg/model.py", workspace.source / "link");
  auto snapshot = workspace.take();
  TempDir runs;

  SECTION("independent copies the job may rewrite") {
    mode_t old_umask = ::umask(022);
    fs::path target = runs.path / "run1";
    snapshot::materialize(workspace.store, snapshot.id, target);
    ::umask(old_umask);
    CHECK(read_text(target / "train.py") == "print('train')\n");
    CHECK(read_text(target / "pkg/model.py") == "class Model: pass\n");
    CHECK(lstat_of(target / "train.py").st_ino !=
          lstat_of(object_path(workspace, "print('train')\n")).st_ino);
    CHECK(lstat_of(target / "train.py").st_nlink == 1);
    CHECK((lstat_of(target / "run.sh").st_mode & 07777) == 0755);
    CHECK((lstat_of(target / "train.py").st_mode & 07777) == 0644);
    CHECK(fs::is_directory(target / "empty"));
    CHECK(fs::is_empty(target / "empty"));
    CHECK(fs::read_symlink(target / "link") == "pkg/model.py");
    CHECK(read_text(target / "link") == "class Model: pass\n");
  }
  SECTION("copies onto another filesystem") {
    struct stat shm {};
    if (::stat("/dev/shm", &shm) != 0 || shm.st_dev == lstat_of(workspace.store).st_dev) {
      WARN("no second filesystem at /dev/shm; skipping");
      return;
    }
    char pattern[] = "/dev/shm/amlrun-snapshot-XXXXXX";
    fs::path other = ::mkdtemp(pattern);
    snapshot::materialize(workspace.store, snapshot.id, other / "run");
    CHECK(read_text(other / "run/train.py") == "print('train')\n");
    CHECK(lstat_of(other / "run/train.py").st_nlink == 1);
    CHECK((lstat_of(other / "run/run.sh").st_mode & 0111) != 0);
    fs::remove_all(other);
  }
  SECTION("the target must be new or empty") {
    write_file(runs.path / "busy/file", "x");
    CHECK(message_of([&] {
            snapshot::materialize(workspace.store, snapshot.id, runs.path / "busy");
          }) == "cannot materialize snapshot into " + (runs.path / "busy").string() +
                    ": it exists and is not an empty directory");
    fs::create_directory(runs.path / "empty_dir");
    snapshot::materialize(workspace.store, snapshot.id, runs.path / "empty_dir");
    CHECK(fs::exists(runs.path / "empty_dir/train.py"));
  }
  SECTION("unknown and malformed ids") {
    std::string unknown(64, 'a');
    CHECK(message_of([&] { snapshot::materialize(workspace.store, unknown, runs.path / "x"); }) ==
          "snapshot " + unknown + " is not in " + workspace.store.string());
    CHECK(message_of([&] { snapshot::read_manifest(workspace.store, "../../etc/passwd"); }) ==
          "'../../etc/passwd' is not a snapshot id (64 lower-case hex digits)");
  }
}

TEST_CASE("a file only its owner may read stays so in the store and in runs",
          "[snapshot][materialize]") {
  Workspace workspace;
  write_file(workspace.source / "secret.env", "TOKEN=1\n", 0600);
  write_file(workspace.source / "group.cfg", "g\n", 0640);
  write_file(workspace.source / "deploy.sh", "#!/bin/sh\n", 0700);
  write_file(workspace.source / "public.txt", "p\n", 0644);
  auto snapshot = workspace.take();
  auto object = [&](const std::string& content, const std::string& suffix) {
    std::string sha = util::sha256_hex(content);
    return workspace.store / "objects" / sha.substr(0, 2) / (sha + suffix);
  };
  CHECK((lstat_of(object("TOKEN=1\n", ".p")).st_mode & 07777) == 0400);
  CHECK((lstat_of(object("g\n", ".p")).st_mode & 07777) == 0400);
  CHECK((lstat_of(object("#!/bin/sh\n", ".x.p")).st_mode & 07777) == 0500);
  CHECK((lstat_of(object("p\n", "")).st_mode & 07777) == 0444);
  CHECK_FALSE(fs::exists(object("TOKEN=1\n", "")));
  auto manifest = snapshot::read_manifest(workspace.store, snapshot.id);
  REQUIRE(manifest.entries.size() == 4);
  CHECK(manifest.entries[0].path == "deploy.sh");
  CHECK(manifest.entries[0].owner_only);
  CHECK(manifest.entries[0].executable);
  CHECK(manifest.entries[2].path == "public.txt");
  CHECK_FALSE(manifest.entries[2].owner_only);

  TempDir runs;
  mode_t old_umask = ::umask(022);
  snapshot::materialize(workspace.store, snapshot.id, runs.path / "run");
  ::umask(old_umask);
  CHECK((lstat_of(runs.path / "run/secret.env").st_mode & 07777) == 0600);
  CHECK((lstat_of(runs.path / "run/group.cfg").st_mode & 07777) == 0600);
  CHECK((lstat_of(runs.path / "run/deploy.sh").st_mode & 07777) == 0700);
  CHECK((lstat_of(runs.path / "run/public.txt").st_mode & 07777) == 0644);
  CHECK(read_text(runs.path / "run/secret.env") == "TOKEN=1\n");

  // Opening it up to everyone is a change of the tree, stored as a new object.
  ::chmod((workspace.source / "secret.env").c_str(), 0644);
  auto opened = workspace.take();
  CHECK(opened.id != snapshot.id);
  CHECK((lstat_of(object("TOKEN=1\n", "")).st_mode & 07777) == 0444);
  CHECK((lstat_of(object("TOKEN=1\n", ".p")).st_mode & 07777) == 0400);
}

TEST_CASE("a run rewriting its files in place changes nothing a later run receives",
          "[snapshot][materialize]") {
  Workspace workspace;
  make_small_tree(workspace.source);
  wait_until_settled(workspace.source);
  auto snapshot = workspace.take();
  TempDir runs;
  snapshot::materialize(workspace.store, snapshot.id, runs.path / "run1");

  // Same size, written in place, the mtime put back to the store's: what
  // once reached the store through a hard link.
  fs::path working = runs.path / "run1/train.py";
  struct stat before = lstat_of(working);
  {
    std::fstream out(working, std::ios::binary | std::ios::in | std::ios::out);
    out << "print('TRAIN')\n";
  }
  struct timespec pinned[2] = {{1, 0}, {1, 0}};
  REQUIRE(::utimensat(AT_FDCWD, working.c_str(), pinned, 0) == 0);
  REQUIRE(read_text(working) == "print('TRAIN')\n");
  REQUIRE(lstat_of(working).st_size == before.st_size);

  snapshot::materialize(workspace.store, snapshot.id, runs.path / "run2");
  CHECK(read_text(runs.path / "run2/train.py") == "print('train')\n");
  CHECK(read_text(object_path(workspace, "print('train')\n")) == "print('train')\n");
  CHECK(workspace.take().hashed_files == 0);
}

TEST_CASE("an object modified in the store is refused, then replaced by the next take",
          "[snapshot][materialize]") {
  Workspace workspace;
  make_small_tree(workspace.source);
  wait_until_settled(workspace.source);
  auto snapshot = workspace.take();
  TempDir runs;

  // Written by hand (as root the read-only mode does not stop it), or
  // through a run directory that an older amlrun hard-linked.
  fs::path object = object_path(workspace, "print('train')\n");
  {
    std::ofstream out(object, std::ios::binary | std::ios::trunc);
    out << "print('tampered')\n";
  }
  CHECK(message_of(
            [&] { snapshot::materialize(workspace.store, snapshot.id, runs.path / "run1"); }) ==
        "snapshot " + snapshot.id +
            ": the stored content of train.py was modified after it was stored; submit again to "
            "take a new snapshot");

  // The next snapshot replaces it from the source, though the stat cache
  // says the source file did not change.
  auto again = workspace.take();
  CHECK(again.id == snapshot.id);
  CHECK(again.hashed_files == 1);
  fs::remove_all(runs.path / "run1");
  snapshot::materialize(workspace.store, snapshot.id, runs.path / "run1");
  CHECK(read_text(runs.path / "run1/train.py") == "print('train')\n");
  CHECK(workspace.take().hashed_files == 0);

  // A chmod counts as a change too.
  ::chmod(object_path(workspace, "class Model: pass\n").c_str(), 0644);
  CHECK(workspace.take().hashed_files == 1);
}

TEST_CASE("hostile names stay inside the store and the target", "[snapshot][hostile]") {
  Workspace workspace;
  std::vector<std::string> names = {"new\nline",
                                    "tab\there",
                                    "back\\slash",
                                    "\xff\xfe not utf-8",
                                    "..."
                                    "",
                                    "-rf",
                                    " lead",
                                    "\x01\x7f"};
  for (const auto& name : names) write_file(workspace.source / name, "content " + name);
  fs::create_symlink("/etc", workspace.source / "etc");
  fs::create_symlink("../..", workspace.source / "up");
  auto snapshot = workspace.take();
  CHECK(snapshot.files == names.size());

  TempDir runs;
  fs::path target = runs.path / "run";
  snapshot::materialize(workspace.store, snapshot.id, target);
  for (const auto& name : names) CHECK(read_text(target / name) == "content " + name);
  CHECK(fs::read_symlink(target / "up") == "../..");
  // Nothing but the run directory was created beside it.
  std::vector<fs::path> beside;
  for (const auto& item : fs::directory_iterator(runs.path))
    beside.push_back(item.path().filename());
  CHECK(beside == std::vector<fs::path>{"run"});
  // A second snapshot of the materialized tree is the same snapshot.
  Workspace again;
  fs::remove_all(again.source);
  fs::rename(target, again.source);
  CHECK(again.take().id == snapshot.id);
}

TEST_CASE("a crafted manifest cannot make materialize write outside the target",
          "[snapshot][hostile]") {
  Workspace workspace;
  write_file(workspace.source / "a", "a");
  workspace.take();
  TempDir runs;
  auto store_manifest = [&](const std::string& text) {
    std::string id = util::sha256_hex(text);
    write_file(workspace.store / "manifests" / id, text);
    return id;
  };
  std::string sha = util::sha256_hex("a");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"d\t..\n", "unsafe path '..'"},
      {"f\t644\t1\t" + sha + "\t../escape\n", "unsafe path '../escape'"},
      {"f\t644\t1\t" + sha + "\t/tmp/abs\n", "unsafe path '/tmp/abs'"},
      {"d\tx\nf\t644\t1\t" + sha + "\tx/../../y\n", "unsafe path 'x/../../y'"},
      {"f\t644\t1\t" + sha + "\tsub/file\n", "parent directory not listed"},
      {"l\tlink\t/etc\nf\t644\t1\t" + sha + "\tlink/passwd\n", "parent directory not listed"},
      {"f\t644\t1\t" + sha + "\tb\nf\t644\t1\t" + sha + "\ta\n", "entries out of order"},
      {"f\t644\t1\t" + sha + "\ta\\x00b\n", "unsafe path 'a\\x00b'"},
  };
  for (const auto& [body, why] : cases) {
    std::string id = store_manifest("amlrun-snapshot 1\n" + body);
    std::string message =
        message_of([&] { snapshot::materialize(workspace.store, id, runs.path / "run"); });
    INFO(body);
    CHECK_THAT(message, Catch::Contains(why) && Catch::Contains("corrupt snapshot manifest"));
    CHECK_FALSE(fs::exists(runs.path / "run"));
  }
  CHECK_FALSE(fs::exists(runs.path.parent_path() / "escape"));
  // A manifest whose content does not match its name.
  write_file(workspace.store / "manifests" / std::string(64, 'b'), "amlrun-snapshot 1\n");
  CHECK_THAT(
      message_of([&] { snapshot::read_manifest(workspace.store, std::string(64, 'b')); }),
      Catch::EndsWith(
          "corrupt snapshot manifest: its content does not match its id; take a new snapshot "
          "(submit the job again)"));
}

TEST_CASE("concurrent snapshots of the same content agree", "[snapshot]") {
  Workspace workspace;
  for (int i = 0; i < 200; ++i)
    write_file(workspace.source / ("d" + std::to_string(i % 7)) / std::to_string(i),
               std::string(i * 50, 'c'));
  Workspace other;  // another source directory with the same content, same store
  fs::remove_all(other.source);
  fs::copy(workspace.source, other.source, fs::copy_options::recursive);
  other.options.store_dir = workspace.store;
  snapshot::Snapshot first, second;
  std::thread a([&] { first = workspace.take(); });
  std::thread b([&] { second = snapshot::take(other.source, other.options); });
  a.join();
  b.join();
  CHECK(first.id == second.id);
  TempDir runs;
  snapshot::materialize(workspace.store, first.id, runs.path / "run");
  CHECK(read_text(runs.path / "run/d3/150") == std::string(150 * 50, 'c'));
  CHECK(stray_files(workspace.store).empty());
}

TEST_CASE("manifest text round-trips any name", "[snapshot][manifest]") {
  std::vector<snapshot::Entry> entries(3);
  entries[0].path = "a\tb\\c\nd\x01";
  entries[0].type = EntryType::symlink;
  entries[0].link_target = "t\n\\x";
  entries[0].size = entries[0].link_target.size();
  entries[1].path = "dir";
  entries[1].type = EntryType::directory;
  entries[2].path = "dir/\xff";
  entries[2].executable = true;
  entries[2].size = 12;
  entries[2].sha256 = std::string(64, 'f');
  std::string text = snapshot::serialize_manifest(entries);
  CHECK(text == "amlrun-snapshot 1\nl\ta\\tb\\\\c\\nd\\x01\tt\\n\\\\x\nd\tdir\nf\t755\t12\t" +
                    std::string(64, 'f') + "\tdir/\xff\n");
  CHECK(snapshot::parse_manifest(text, "m") == entries);
}

TEST_CASE("a missing object is stored again; materialize names what is missing", "[snapshot]") {
  Workspace workspace;
  make_small_tree(workspace.source);
  wait_until_settled(workspace.source);
  auto snapshot = workspace.take();
  fs::remove(object_path(workspace, "print('train')\n"));
  TempDir runs;
  CHECK(message_of([&] {
          snapshot::materialize(workspace.store, snapshot.id, runs.path / "run");
        }) == "snapshot " + snapshot.id + ": the stored content of train.py is missing from " +
                  (workspace.store / "objects").string() + "; submit again to take a new snapshot");
  auto again = workspace.take();  // the stat cache hit does not hide it
  CHECK(again.hashed_files == 1);
  fs::remove_all(runs.path / "run");
  snapshot::materialize(workspace.store, snapshot.id, runs.path / "run");
  CHECK(read_text(runs.path / "run/train.py") == "print('train')\n");
}

TEST_CASE("an ignore file that is a symlink or not a file is not used", "[snapshot][ignore]") {
  Workspace workspace;
  write_file(workspace.source / "rules", "*.log\n");
  fs::create_symlink("rules", workspace.source / ".gitignore");
  write_file(workspace.source / "a.log", "log");
  fs::create_directories(workspace.source / "sub/.amlignore");
  auto snapshot = workspace.take();
  CHECK(workspace.paths(snapshot.id) ==
        std::vector<std::string>{".gitignore", "a.log", "rules", "sub", "sub/.amlignore"});
  std::string src = workspace.source.string();
  CHECK(workspace.warnings ==
        std::vector<std::string>{"not using " + src + "/.gitignore: it is a symlink",
                                 "not using " + src +
                                     "/sub/.amlignore: it is a directory, not a "
                                     "regular file"});
}

TEST_CASE("source directory errors name the directory", "[snapshot]") {
  Workspace workspace;
  CHECK(message_of([&] { snapshot::take(workspace.temp.path / "nope", workspace.options); }) ==
        "source directory " + (workspace.temp.path / "nope").string() + " does not exist");
  write_file(workspace.temp.path / "file", "x");
  CHECK(message_of([&] { snapshot::take(workspace.temp.path / "file", workspace.options); }) ==
        "source directory " + (workspace.temp.path / "file").string() + " is not a directory");
}

TEST_CASE("a device node is skipped with a warning", "[snapshot]") {
  Workspace workspace;
  if (::mknod((workspace.source / "null").c_str(), S_IFCHR | 0644, makedev(1, 3)) != 0) {
    WARN("cannot create a device node here; skipping");
    return;
  }
  auto snapshot = workspace.take();
  CHECK(workspace.paths(snapshot.id).empty());
  CHECK(workspace.warnings ==
        std::vector<std::string>{
            "skipping " + workspace.source.string() +
            "/null: it is a character device; only regular files, directories and "
            "symlinks are snapshotted (add it to .amlignore to silence this warning)"});
}

namespace {

// Copies of one tree in `count` source directories, all snapshotted at once
// into one store: every object is written by every take at about the same
// time. Returns "<id>" when all agree, else what went wrong.
std::string take_concurrently(const fs::path& root, int count) {
  fs::path store = root / "store";
  std::vector<fs::path> sources;
  for (int copy = 0; copy < count; ++copy) {
    fs::path source = root / ("src" + std::to_string(copy));
    // Small files (read whole first), files larger than the copy buffer
    // (written as they are read), duplicates and executables; enough
    // entries and directories for the walk to use its helper threads.
    for (int i = 0; i < 400; ++i) {
      std::string content = "file " + std::to_string(i % 150) + "\n";
      if (i % 100 == 7) content = std::string((300 << 10) + i, static_cast<char>('a' + i % 26));
      write_file(source / ("d" + std::to_string(i % 20)) / std::to_string(i), content,
                 i % 9 == 0 ? 0755 : 0644);
    }
    sources.push_back(source);
  }
  std::vector<std::string> ids(count);
  std::vector<std::thread> takers;
  for (int copy = 0; copy < count; ++copy) {
    takers.emplace_back([&, copy] {
      snapshot::Options options;
      options.store_dir = store;
      options.warn = [](const std::string&) {};
      std::string id;
      std::string error = message_of([&] { id = snapshot::take(sources[copy], options).id; });
      ids[copy] = error == "<no error>" ? id : error;
    });
  }
  for (auto& taker : takers) taker.join();
  for (int copy = 0; copy < count; ++copy) {
    if (ids[copy].size() != 64) return "take " + std::to_string(copy) + ": " + ids[copy];
    if (ids[copy] != ids[0]) return "ids differ";
  }
  for (const auto& item : fs::recursive_directory_iterator(store / "objects")) {
    struct stat st {};
    ::lstat(item.path().c_str(), &st);
    if (S_ISREG(st.st_mode) &&
        (st.st_mtim.tv_sec != 1 || st.st_nlink != 1 ||
         (st.st_mode & 07777) != (item.path().extension() == ".x" ? 0555u : 0444u))) {
      return "object not as stored: " + item.path().string();
    }
  }
  std::vector<std::string> stray = stray_files(store);
  if (!stray.empty()) return "stray file " + stray.front();
  snapshot::materialize(store, ids[0], root / "run");
  for (const auto& item : fs::recursive_directory_iterator(sources[0])) {
    if (item.is_regular_file() &&
        read_text(item.path()) !=
            read_text(root / "run" / item.path().lexically_relative(sources[0]))) {
      return "materialized content differs: " + item.path().string();
    }
  }
  return ids[0];
}

}  // namespace

TEST_CASE("concurrent takes writing the same objects all succeed", "[snapshot][concurrency]") {
  SECTION("unnamed temp files (O_TMPFILE)") {
    TempDir temp;
    std::string id = take_concurrently(temp.path, 4);
    CHECK(id.size() == 64);
    CHECK_FALSE(fs::exists(temp.path / "store/tmp"));  // never needed
  }
  SECTION("named temp files in tmp/, where O_TMPFILE files cannot be named") {
    TempDir temp;
    std::string id = without_proc([&] {
      if (::access("/proc/self/fd", F_OK) == 0) return std::string("/proc still visible");
      return take_concurrently(temp.path, 4);
    });
    if (id == k_no_namespace) {
      WARN("cannot make a mount namespace here; skipping");
      return;
    }
    CHECK(id.size() == 64);
    CHECK(fs::is_empty(temp.path / "store/tmp"));
    // Both schemes store the same snapshot.
    TempDir other;
    CHECK(take_concurrently(other.path, 1) == id);
  }
}

TEST_CASE("a warm snapshot of an unchanged tree writes nothing", "[snapshot][cache]") {
  Workspace workspace;
  make_small_tree(workspace.source);
  write_file(workspace.source / "pkg/deep/er/data.bin", std::string(400 << 10, 'd'));
  wait_until_settled(workspace.source);
  auto cold = workspace.take();
  std::vector<std::string> before = identities(workspace.store);
  auto warm = workspace.take();
  CHECK(warm.id == cold.id);
  CHECK(warm.hashed_files == 0);
  // Not the manifest, not the stat cache, not an object, not a directory.
  CHECK(identities(workspace.store) == before);

  // A change rewrites the cache (and adds an object and a manifest)...
  fs::path cache_file = fs::directory_iterator(workspace.store / "cache")->path();
  ino_t cache_inode = lstat_of(cache_file).st_ino;
  write_file(workspace.source / "train.py", "print('changed')\n");
  wait_until_settled(workspace.source);
  auto changed = workspace.take();
  CHECK(changed.hashed_files == 1);
  CHECK(lstat_of(cache_file).st_ino != cache_inode);
  // ...and then nothing is written again.
  before = identities(workspace.store);
  CHECK(workspace.take().hashed_files == 0);
  CHECK(identities(workspace.store) == before);

  // A file gone from the tree changes the cache too, though every file left
  // is a hit: the cache must not keep an entry for it.
  fs::remove(workspace.source / "pkg/model.py");
  cache_inode = lstat_of(cache_file).st_ino;
  auto removed = workspace.take();
  CHECK(removed.hashed_files == 0);
  CHECK(removed.id != changed.id);
  CHECK(lstat_of(cache_file).st_ino != cache_inode);
  CHECK(snapshot::StatCache::load(cache_file).size() == removed.files);
}

TEST_CASE("a racy entry keeps the stat cache from being left as it is", "[snapshot][cache]") {
  // An entry that is not trusted is hashed, so the cache is written again
  // with a new start time: it becomes trusted once the clock has passed it.
  Workspace workspace;
  write_file(workspace.source / "settled", "s");
  write_file(workspace.source / "future", "f");
  struct timespec future[2] = {{0, UTIME_OMIT}, {::time(nullptr) + 3600, 0}};
  REQUIRE(::utimensat(AT_FDCWD, (workspace.source / "future").c_str(), future, 0) == 0);
  wait_until_settled(workspace.source / "settled");
  workspace.take();
  fs::path cache_file = fs::directory_iterator(workspace.store / "cache")->path();
  for (int i = 0; i < 2; ++i) {
    ino_t cache_inode = lstat_of(cache_file).st_ino;
    CHECK(workspace.take().hashed_files == 1);
    CHECK(lstat_of(cache_file).st_ino != cache_inode);
  }
}

TEST_CASE("content the store already holds is not written again", "[snapshot]") {
  Workspace first;
  make_small_tree(first.source);
  auto stored = first.take();
  std::vector<std::string> objects = identities(first.store / "objects");
  std::vector<std::string> manifests = identities(first.store / "manifests");

  // Another checkout of the same code: read and hashed (no stat cache for
  // it), but every object and the manifest are already there.
  Workspace second;
  make_small_tree(second.source);
  second.options.store_dir = first.store;
  auto again = snapshot::take(second.source, second.options);
  CHECK(again.id == stored.id);
  CHECK(again.hashed_files == 4);
  CHECK(identities(first.store / "objects") == objects);
  CHECK(identities(first.store / "manifests") == manifests);
}

TEST_CASE("a small tree makes only the store directories it needs", "[snapshot]") {
  Workspace workspace;
  write_file(workspace.source / "train.py", "print('train')\n");
  workspace.take();
  std::vector<std::string> directories;
  for (const auto& item : fs::recursive_directory_iterator(workspace.store)) {
    if (item.is_directory()) directories.push_back(item.path().lexically_relative(workspace.store));
  }
  std::sort(directories.begin(), directories.end());
  std::string fan_out = util::sha256_hex("print('train')\n").substr(0, 2);
  CHECK(directories ==
        std::vector<std::string>{"cache", "manifests", "objects", "objects/" + fan_out});
}

TEST_CASE("a temp file another take is about to rename is not removed as stale", "[snapshot]") {
  // A finished temp file already has the objects' 1970 mtime; only its ctime
  // tells that it is new.
  Workspace workspace;
  write_file(workspace.source / "a", "a");
  workspace.take();
  write_file(workspace.store / "tmp/1234-abcdef01-0", "finished, not yet renamed", 0444);
  struct timespec pinned[2] = {{1, 0}, {1, 0}};
  REQUIRE(::utimensat(AT_FDCWD, (workspace.store / "tmp/1234-abcdef01-0").c_str(), pinned, 0) == 0);
  workspace.take();
  CHECK(fs::exists(workspace.store / "tmp/1234-abcdef01-0"));
}

TEST_CASE("copy progress is reported only for a snapshot that takes a while", "[snapshot]") {
  Workspace workspace;
  make_small_tree(workspace.source);
  std::vector<std::string> calls;
  workspace.options.threads = 1;
  workspace.options.progress = [&](const snapshot::CopyProgress& p) {
    calls.push_back(fmt::format("{}/{} {}/{}{}", p.files_done, p.files_total, p.bytes_done,
                                p.bytes_total, p.final ? " final" : ""));
  };
  SECTION("quicker than progress_after_ms: nothing") {
    workspace.take();
    CHECK(calls.empty());
  }
  SECTION("past progress_after_ms: each file on the calling thread, then the end") {
    workspace.options.progress_after_ms = 0;
    workspace.options.progress_every_ms = 0;
    workspace.take();
    REQUIRE(calls.size() == 5);
    CHECK(calls[3] == "4/4 52/52");
    CHECK(calls[4] == "4/4 52/52 final");
  }
}
