#include "lib/store/run_layout.hpp"

#include <fmt/format.h>

namespace amlrun::store {

std::string RunTree::relative_logs() {
  return fmt::format("{}/{}", k_artifacts_dir, k_job_logs_dir);
}

std::string RunTree::relative_user_logs() {
  return fmt::format("{}/{}", relative_logs(), k_user_logs_dir);
}

std::string RunTree::relative_metrics() {
  return fmt::format("{}/{}", relative_logs(), k_metrics_dir);
}

std::string RunTree::relative_system_logs() {
  return fmt::format("{}/{}", relative_logs(), k_system_logs_dir);
}

std::string RunTree::relative_outputs() {
  return fmt::format("{}/{}", k_artifacts_dir, k_job_outputs_dir);
}

std::string RunTree::rank_log_name(int rank) {
  return fmt::format("std_log_rank_{}.txt", rank);
}

std::string RunTree::rank_metrics_name(int rank) {
  return fmt::format("rank_{}.jsonl", rank);
}

std::string RunTree::tracking_metrics_name(int rank) {
  return fmt::format("mlflow_rank_{}.jsonl", rank);
}

std::string SlurmRunLayout::batch_output_name(const std::string& job_id) {
  return fmt::format("slurm-{}.out", job_id);
}

bool SlurmRunLayout::is_batch_output_name(const std::string& name) {
  if (!name.starts_with("slurm-") || !name.ends_with(".out") || name.size() <= 10) return false;
  for (std::size_t i = 6; i + 4 < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return false;
  }
  return true;
}

}  // namespace amlrun::store
