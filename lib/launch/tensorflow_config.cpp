#include "lib/launch/tensorflow_config.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "lib/util/error.hpp"

namespace amlrun::launch {

TensorflowCluster tensorflow_cluster(const std::vector<std::string>& addresses, int worker_count) {
  TensorflowCluster cluster;
  for (std::size_t rank = 0; rank < addresses.size(); ++rank) {
    auto& role =
        static_cast<int>(rank) < worker_count ? cluster.workers : cluster.parameter_servers;
    role.push_back(addresses[rank]);
  }
  return cluster;
}

static nlohmann::ordered_json cluster_object(const TensorflowCluster& cluster) {
  nlohmann::ordered_json json = nlohmann::ordered_json::object();
  json["worker"] = cluster.workers;
  if (!cluster.parameter_servers.empty()) json["ps"] = cluster.parameter_servers;
  return json;
}

std::string tensorflow_cluster_json(const TensorflowCluster& cluster) {
  return cluster_object(cluster).dump();
}

TensorflowCluster tensorflow_cluster_from_json(const std::string& text) {
  TensorflowCluster cluster;
  try {
    auto json = nlohmann::json::parse(text);
    cluster.workers = json.at("worker").get<std::vector<std::string>>();
    if (json.contains("ps")) cluster.parameter_servers = json["ps"].get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& error) {
    throw util::InfraError(
        fmt::format("the TensorFlow cluster handed to the rank is not valid: {}", error.what()));
  }
  return cluster;
}

std::string tensorflow_config(const TensorflowCluster& cluster, int rank) {
  int workers = static_cast<int>(cluster.workers.size());
  bool worker = rank < workers;
  nlohmann::ordered_json json;
  json["cluster"] = cluster_object(cluster);
  json["task"] = {{"type", worker ? "worker" : "ps"}, {"index", worker ? rank : rank - workers}};
  return json.dump();
}

}  // namespace amlrun::launch
