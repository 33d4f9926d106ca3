#pragma once
// TF_CONFIG for `distribution: {type: tensorflow}` (Azure ML's contract):
// every process gets the same cluster, the "host:port" of each worker and
// parameter server, and its own task (type and index), as JSON:
//   {"cluster": {"worker": ["h0:p0", "h0:p1"], "ps": ["h1:p0"]},
//    "task": {"type": "worker", "index": 1}}
// The first worker_count ranks are the workers (worker i is rank i), the
// rest the parameter servers (ps j is rank worker_count + j). "ps" is left
// out when there are none: TensorFlow's MultiWorkerMirroredStrategy takes a
// cluster of workers only.
#include <string>
#include <vector>

namespace amlrun::launch {

struct TensorflowCluster {
  std::vector<std::string> workers;            // "host:port", by worker index
  std::vector<std::string> parameter_servers;  // "host:port", by ps index
  bool empty() const { return workers.empty() && parameter_servers.empty(); }
  int size() const { return static_cast<int>(workers.size() + parameter_servers.size()); }
};

// addresses[r] is rank r's "host:port".
TensorflowCluster tensorflow_cluster(const std::vector<std::string>& addresses, int worker_count);

// The cluster part alone, the same for every rank (passed to ranks that
// learn their own rank only when they start, as on Slurm).
std::string tensorflow_cluster_json(const TensorflowCluster& cluster);
// Throws util::InfraError when `json` is not what tensorflow_cluster_json wrote.
TensorflowCluster tensorflow_cluster_from_json(const std::string& json);

// TF_CONFIG of `rank` (0 <= rank < cluster.size()).
std::string tensorflow_config(const TensorflowCluster& cluster, int rank);

}  // namespace amlrun::launch
