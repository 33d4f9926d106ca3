#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <set>

#include "lib/launch/rank_environment.hpp"
#include "lib/launch/tensorflow_config.hpp"
#include "lib/util/process.hpp"

using namespace amlrun;
using util::get_env;

TEST_CASE("TF_CONFIG: the first worker_count ranks are workers, the rest parameter servers") {
  auto cluster = launch::tensorflow_cluster({"h0:1", "h0:2", "h1:1", "h1:2"}, 3);
  CHECK(cluster.workers == std::vector<std::string>{"h0:1", "h0:2", "h1:1"});
  CHECK(cluster.parameter_servers == std::vector<std::string>{"h1:2"});
  CHECK(launch::tensorflow_config(cluster, 1) ==
        R"({"cluster":{"worker":["h0:1","h0:2","h1:1"],"ps":["h1:2"]},)"
        R"("task":{"type":"worker","index":1}})");
  CHECK(launch::tensorflow_config(cluster, 3) ==
        R"({"cluster":{"worker":["h0:1","h0:2","h1:1"],"ps":["h1:2"]},)"
        R"("task":{"type":"ps","index":0}})");
}

TEST_CASE("TF_CONFIG: no ps list without parameter servers (MultiWorkerMirroredStrategy)") {
  auto cluster = launch::tensorflow_cluster({"127.0.0.1:20001", "127.0.0.1:20002"}, 2);
  CHECK(launch::tensorflow_config(cluster, 0) ==
        R"({"cluster":{"worker":["127.0.0.1:20001","127.0.0.1:20002"]},)"
        R"("task":{"type":"worker","index":0}})");
}

TEST_CASE("the cluster handed to ranks reads back as written; anything else is refused") {
  auto cluster = launch::tensorflow_cluster({"a:1", "b:2", "c:3"}, 2);
  auto back = launch::tensorflow_cluster_from_json(launch::tensorflow_cluster_json(cluster));
  CHECK(back.workers == cluster.workers);
  CHECK(back.parameter_servers == cluster.parameter_servers);
  CHECK_THROWS_WITH(launch::tensorflow_cluster_from_json("{\"workers\": []}"),
                    Catch::StartsWith("the TensorFlow cluster handed to the rank is not valid: "));
}

TEST_CASE("a tensorflow rank gets TF_CONFIG beside the rank variables") {
  launch::RunContext c;
  c.run_dir = "/ws/.amlrun/runs/x";
  c.distribution = spec::DistributionType::tensorflow;
  c.instance_count = 1;
  c.processes_per_instance = 2;
  c.master_port = 29501;
  c.tensorflow = launch::tensorflow_cluster({"127.0.0.1:29502", "127.0.0.1:29503"}, 2);
  auto env = launch::run_environment(c, {});
  launch::add_rank_environment(env, c, 1);
  CHECK(get_env(env, "TF_CONFIG") ==
        R"({"cluster":{"worker":["127.0.0.1:29502","127.0.0.1:29503"]},)"
        R"("task":{"type":"worker","index":1}})");
  CHECK(get_env(env, "RANK") == "1");
  c.distribution = spec::DistributionType::pytorch;
  auto torch_env = launch::run_environment(c, {});
  launch::add_rank_environment(torch_env, c, 1);
  CHECK_FALSE(get_env(torch_env, "TF_CONFIG").has_value());
}

TEST_CASE("process ports are distinct, past MASTER_PORT, in range and free here") {
  // Hold the port right after the master port: it must be skipped.
  int master = launch::derive_master_port("exp_20261203T000000_00000000");
  int held = 20000 + (master + 1 - 20000) % 40000;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(held));
  address.sin_addr.s_addr = htonl(INADDR_ANY);
  bool holding = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  auto ports = launch::derive_process_ports(master, 4);
  ::close(fd);
  REQUIRE(ports.size() == 4);
  std::set<int> distinct(ports.begin(), ports.end());
  CHECK(distinct.size() == 4);
  for (int port : ports) {
    CHECK(port != master);
    CHECK(port >= 20000);
    CHECK(port < 60000);
    if (holding) CHECK(port != held);
  }
  // Wraps around the top of the range.
  auto top = launch::derive_process_ports(59999, 1);
  CHECK(top.at(0) >= 20000);
  CHECK(top.at(0) < 59999);
}
