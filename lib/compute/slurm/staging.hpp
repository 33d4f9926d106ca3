#pragma once
// The amlrun binary (and amlrun-worker beside it) copied into the target's
// shared_dir once per build, so the nodes run exactly the submitter's
// version even where amlrun is installed only on the login node.
//
// A shared directory is shared with other users, and whatever sits in it
// runs on the nodes as the submitting user: a staged copy is used only if
// it is this user's, writable by nobody else, and has the content its name
// promises (<version>-<sha256 prefix>/); one that fails the check is staged
// again when it is ours, refused when it is someone else's.
#include <filesystem>
#include <map>
#include <string>

namespace amlrun::compute {

// What is staged, and under which name: <shared_dir>/bin/<key>/ holds each
// of `sources` (amlrun, amlrun-worker, python/...) by its name.
struct StagedFiles {
  std::string key;  // <version>-<sha256 prefix of amlrun and the shim>
  std::map<std::string, std::filesystem::path> sources;
};
StagedFiles amlrun_files_to_stage();
// The same files without their key (no hashing): name in the folder → file.
std::map<std::string, std::filesystem::path> amlrun_files();
// sha256 of a file of amlrun_files_to_stage() (computed once per process).
std::string staged_source_sha256(const std::filesystem::path& source);

// Returns the staged amlrun; throws util::InfraError when the staged copy
// cannot be trusted and cannot be replaced.
std::filesystem::path stage_amlrun(const std::filesystem::path& shared_dir);

// Throws util::InfraError when `path` (a file or directory under a shared
// directory that amlrun is about to run or use) is not owned by this user,
// or is writable by group or others. `what` names it in the message.
void check_private_to_user(const std::filesystem::path& path, const std::string& what);

}  // namespace amlrun::compute
