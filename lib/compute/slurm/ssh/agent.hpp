#pragma once
// `amlrun _slurm-agent`: the login node's half of a Slurm target reached
// over SSH. The submitting machine starts it through ssh (ssh_target.hpp)
// and talks to it in frames (agent_protocol.hpp) on its standard input and
// output.
//
// The agent keeps a workspace of its own on the cluster, one per submitting
// workspace (<shared_dir>/workspaces/<id>/.amlrun), and runs the same Slurm
// target there that a login-node user runs: snapshots are materialised from
// its store, sbatch/squeue/scancel are local to it, the driver's status
// file and the shared run directory are read as they are today, and the
// finished run is collected into its run folder. What the submitting side
// needs travels back: the record, the logs as they grow, and at the end the
// artifacts.
#include <filesystem>
#include <string>

namespace amlrun::compute {

struct AgentOptions {
  std::filesystem::path workspace;  // <shared_dir>/workspaces/<id>/.amlrun
  std::string target;               // the compute target's name
};

// Serves requests until its input ends; returns the exit code.
int serve_slurm_agent(const AgentOptions& options);

}  // namespace amlrun::compute
