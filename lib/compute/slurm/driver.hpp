#pragma once
// `amlrun _slurm-run`: the node-side half of a Slurm run (see driver.cpp).
#include <filesystem>

namespace amlrun::compute {

// Runs the job whose shared run directory is `run_dir` inside its Slurm
// allocation and returns the exit code for the batch step.
int run_slurm_job(const std::filesystem::path& run_dir);

}  // namespace amlrun::compute
