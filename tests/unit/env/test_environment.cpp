#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>

#include <catch2/catch.hpp>

#include "../spec/spec_test_support.hpp"
#include "../test_support.hpp"
#include "lib/env/context.hpp"
#include "lib/env/engine_api.hpp"
#include "lib/env/environment.hpp"
#include "lib/env/pip_settings.hpp"
#include "lib/env/runtime.hpp"
#include "lib/util/fs.hpp"

using namespace amlrun;
namespace fs = std::filesystem;
using unit_test::message_of;

namespace {

workspace::EnvironmentSettings settings() {
  return {};
}

std::string hash_of(const spec_test::JobDir& dir, const std::string& job) {
  auto loaded = spec_test::load(dir, job);
  return env::environment_hash(env::resolve_environment(loaded.spec, settings()));
}

const char* k_estimator = "source_directory: src\nentry_script: train.py\n";

}  // namespace

TEST_CASE("the hash ignores order, whitespace and comments, and follows content") {
  spec_test::JobDir dir;
  std::string base = std::string(k_estimator) +
                     "pip_packages: [torch==1.13.1, Requests>=2]\n"
                     "environment_variables: {A: '1', B: '2'}\n";
  std::string reordered = std::string(k_estimator) +
                          "environment_variables:\n  B: '2'\n  A: '1'   # comment\n"
                          "pip_packages:\n  - requests >= 2\n  - torch == 1.13.1\n";
  CHECK(hash_of(dir, base) == hash_of(dir, reordered));
  CHECK(hash_of(dir, base) !=
        hash_of(dir, std::string(k_estimator) + "pip_packages: [torch==1.13.0, Requests>=2]\n"
                                                "environment_variables: {A: '1', B: '2'}\n"));
  CHECK(hash_of(dir, base) !=
        hash_of(dir, std::string(k_estimator) + "pip_packages: [torch==1.13.1, Requests>=2]\n"
                                                "environment_variables: {A: '1', B: '3'}\n"));
  CHECK(hash_of(dir, base) != hash_of(dir, base + "use_gpu: true\n"));
  CHECK(hash_of(dir, base) != hash_of(dir, base + "shm_size: 8g\n"));
  // What does not affect the environment does not change it.
  CHECK(hash_of(dir, base) == hash_of(dir, base + "script_params: {--epochs: 3}\nnode_count: 1\n"));
}

TEST_CASE("a conda file is canonicalised: key order, comments and dependency order do not count") {
  spec_test::JobDir dir;
  std::ofstream(dir.path / "a.yml") << "name: one\nchannels: [conda-forge, defaults]\n"
                                       "dependencies:\n  - numpy=1.24\n  - python=3.11\n"
                                       "  - pip:\n    - torch==1.13.1\n";
  std::ofstream(dir.path / "b.yml") << "# the same environment\ndependencies:\n  - python=3.11\n"
                                       "  - numpy=1.24   # pinned\n  - pip: [torch==1.13.1]\n"
                                       "channels:\n  - conda-forge\n  - defaults\nname: two\n";
  std::ofstream(dir.path / "c.yml")
      << "channels: [defaults, conda-forge]\n"
         "dependencies: [numpy=1.24, python=3.11, {pip: [torch==1.13.1]}]\n";
  auto job = [](const char* file) {
    return std::string("command: x\nenvironment:\n  conda_file: ") + file + "\n";
  };
  CHECK(hash_of(dir, job("a.yml")) == hash_of(dir, job("b.yml")));
  CHECK(hash_of(dir, job("a.yml")) != hash_of(dir, job("c.yml")));  // channel priority matters
}

TEST_CASE("package specifications are validated with positions") {
  spec_test::JobDir dir;
  auto first_line = [&](const std::string& text) {
    std::string all = spec_test::errors_of(dir, text);
    return all.substr(0, all.find('\n'));
  };
  CHECK(first_line(std::string(k_estimator) +
                   "pip_packages: [\"torch\\n--index-url https://evil.example/simple\"]\n") ==
        "job.yml:3:16: pip_packages[0]: 'torch\\n--index-url https://evil.example/simple' contains "
        "a control character (a newline); a package specification is one line of text");
  CHECK(first_line(std::string(k_estimator) + "pip_packages: [\"--extra-index-url http://x\"]\n") ==
        "job.yml:3:16: pip_packages[0]: '--extra-index-url http://x' is a pip option, not a "
        "requirement; set indexes and other options in pip.conf or PIP_* environment variables "
        "(amlrun passes them to pip)");
  CHECK(first_line(std::string(k_estimator) + "pip_packages: [\"torch=1.13\"]\n") ==
        "job.yml:3:16: pip_packages[0]: 'torch=1.13' has '=1.13' where a version specifier (==, "
        ">=, ~=, ...) belongs");
  CHECK(first_line(std::string(k_estimator) + "conda_packages: [\"numpy; rm -rf /\"]\n") ==
        "job.yml:3:18: conda_packages[0]: 'numpy; rm -rf /' contains ';', which a conda match "
        "spec cannot hold");
  auto loaded = spec_test::load(dir, std::string(k_estimator) +
                                         "pip_packages: ['Foo.Bar_baz [Extra] >= 1.0, < 2 ; "
                                         "python_version < \"3.12\"', 'pkg @ https://h/p.whl']\n");
  CHECK(loaded.spec.environment.pip_packages ==
        std::vector<std::string>{"foo-bar-baz[extra]>=1.0,<2; python_version < \"3.12\"",
                                 "pkg @ https://h/p.whl"});
}

TEST_CASE("requirements files: options kept, other files refused, bad lines named") {
  spec_test::JobDir dir;
  std::ofstream(dir.path / "requirements.txt")
      << "# pinned\n--find-links /wheels\ntorch==1.13.1  # cpu\n\nnumpy\n";
  auto loaded =
      spec_test::load(dir, std::string(k_estimator) + "pip_requirements_file: requirements.txt\n");
  auto environment = env::resolve_environment(loaded.spec, settings());
  CHECK(environment.pip_options == std::vector<std::string>{"--find-links /wheels"});
  CHECK(environment.pip_requirements == std::vector<std::string>{"numpy", "torch==1.13.1"});
  std::ofstream(dir.path / "requirements.txt") << "-r other.txt\n";
  auto again =
      spec_test::load(dir, std::string(k_estimator) + "pip_requirements_file: requirements.txt\n");
  CHECK(message_of([&] { env::resolve_environment(again.spec, settings()); }) ==
        (dir.path / "requirements.txt").string() +
            ":1: '-r other.txt' refers to another file or a local path, which the environment "
            "cannot include; list those requirements in this file");
  std::ofstream(dir.path / "requirements.txt") << "ok\nbad name!\n";
  CHECK(message_of([&] { env::resolve_environment(again.spec, settings()); }) ==
        (dir.path / "requirements.txt").string() +
            ":2: 'bad name!' has 'name!' where a version "
            "specifier (==, >=, ~=, ...) belongs");
}

TEST_CASE("the mode follows what the environment needs and the workspace offers") {
  spec_test::JobDir dir;
  auto environment_of = [&](const std::string& job) {
    return env::resolve_environment(spec_test::load(dir, job).spec, settings());
  };
  auto host = environment_of("command: x\nenvironment: {image: python:3.11}\n");
  CHECK(env::choose_mode(host, settings()) == env::Mode::host);
  CHECK(host.base_image == "python:3.11");
  auto venv = environment_of(std::string(k_estimator) + "pip_packages: [numpy]\n");
  CHECK(env::choose_mode(venv, settings()) == env::Mode::venv);
  CHECK(venv.base_image == "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04");
  auto gpu = environment_of(std::string(k_estimator) + "use_gpu: true\n");
  CHECK(gpu.base_image == "mcr.microsoft.com/azureml/openmpi4.1.0-cuda11.8-cudnn8-ubuntu22.04");
  workspace::EnvironmentSettings with_runtime;
  with_runtime.runtime = "podman";
  CHECK(env::choose_mode(host, with_runtime) == env::Mode::container);
}

TEST_CASE("the build context is exact and byte-for-byte reproducible") {
  spec_test::JobDir dir;
  auto loaded =
      spec_test::load(dir, std::string(k_estimator) +
                               "pip_packages: [torch==1.13.1]\n"
                               "custom_docker_image: python:3.11-slim\n"
                               "environment_variables: {OMP_NUM_THREADS: '2', TOKEN: 'a$b\"c'}\n");
  auto environment = env::resolve_environment(loaded.spec, settings());
  std::string hash = env::environment_hash(environment);
  auto files = env::generated_context(environment, hash);
  REQUIRE(files.size() == 3);
  CHECK(files[0].name == "Dockerfile");
  CHECK(files[0].content ==
        "# Generated by amlrun for environment " + hash +
            ".\n"
            "# Build: docker build --tag amlrun-env:" +
            hash.substr(0, 16) +
            " .\n"
            "FROM python:3.11-slim\n"
            "LABEL org.amlrun.environment=\"" +
            hash +
            "\"\n"
            "COPY requirements.txt /amlrun/requirements.txt\n"
            "COPY pip/ /amlrun/pip/\n"
            "RUN PIP_CONFIG_FILE=/amlrun/pip/pip.conf python -m pip install --no-cache-dir "
            "--requirement /amlrun/requirements.txt\n"
            "ENV OMP_NUM_THREADS=\"2\"\n"
            "ENV TOKEN=\"a\\$b\\\"c\"\n"
            "WORKDIR /workspace\n");
  CHECK(files[1].name == "amlrun.def");
  CHECK(files[2].name == "requirements.txt");
  CHECK(files[2].content == "torch==1.13.1\n");

  auto first = dir.path / "ctx1";
  auto second = dir.path / "ctx2";
  ::unsetenv("PIP_CERT");  // (a copied cert file is covered by the test below)
  ::unsetenv("PIP_CLIENT_CERT");
  CHECK(env::write_build_context(environment, hash, first) ==
        std::vector<std::string>{"Dockerfile", "amlrun.def", "requirements.txt", "pip/pip.conf"});
  env::write_build_context(environment, hash, second);
  for (const char* name : {"Dockerfile", "amlrun.def", "requirements.txt"}) {
    CHECK(unit_test::read(first / name) == unit_test::read(second / name));
    struct stat a {
    }, b{};
    ::stat((first / name).c_str(), &a);
    ::stat((second / name).c_str(), &b);
    CHECK(a.st_mtime == 1);
    CHECK(a.st_mode == b.st_mode);
  }
  CHECK(message_of([&] { env::write_build_context(environment, hash, first); }) ==
        first.string() + " is not an empty directory; give a new or empty one");
}

TEST_CASE("the host's PIP_* settings become the build's pip.conf, host paths left out") {
  spec_test::JobDir dir;
  auto cert = dir.path / "ca.pem";
  util::write_file_atomic(cert, "-----BEGIN CERTIFICATE-----\n", 0644);
  auto pip = env::host_pip_settings(
      {"PIP_INDEX_URL=https://pypi.example/simple", "PIP_CERT=" + cert.string(),
       "PIP_FIND_LINKS=/opt/wheels https://wheels.example/", "PIP_CACHE_DIR=/root/.cache/pip",
       "PIP_TIMEOUT=a\nb", "PIPX_HOME=/x", "PATH=/bin"});
  CHECK(pip.config ==
        "# The host's PIP_* settings, for this build's pip install only (written by amlrun).\n"
        "[global]\n"
        "cert = /amlrun/pip/cert.pem\n"
        "find-links = https://wheels.example/\n"
        "index-url = https://pypi.example/simple\n");
  REQUIRE(pip.files.size() == 1);
  CHECK(pip.files[0].first == "cert.pem");
  CHECK(pip.files[0].second == cert);
}

TEST_CASE("a value a Dockerfile cannot hold is left out of the context, saying so") {
  spec_test::JobDir dir;
  auto loaded = spec_test::load(
      dir, "command: x\nenvironment_variables: {MULTI: \"a\\nb\", ONE: \"a $b\"}\n");
  auto environment = env::resolve_environment(loaded.spec, settings());
  auto files = env::generated_context(environment, "0123456789abcdef0123");
  REQUIRE(files.at(0).name == "Dockerfile");
  CHECK(files[0].content.find(
            "# MULTI is set when the container runs: its value has a control character, which "
            "this file cannot hold\nENV ONE=\"a \\$b\"\n") != std::string::npos);
  REQUIRE(files.at(1).name == "amlrun.def");
  CHECK(files[1].content.find("    # MULTI is set when the container runs") != std::string::npos);
}

TEST_CASE("container commands are exact argv, values never on the command line") {
  env::ContainerRun run;
  run.runtime = "podman";
  run.image = "amlrun-env:0123456789abcdef";
  run.working_dir = "/ws/runs/r/wd";
  run.mounts = {{"/ws/runs/r/wd", false}, {"/ws/runs/r/inputs", true}};
  run.shm_size = "2g";
  run.name = "amlrun-r";
  run.user = "1000:1000";
  run.labels = {{"org.amlrun.run", "r"}};
  run.variables = {"AMLRUN_RUN_ID", "RANK"};
  run.program = {"bash", "-c", "python train.py"};
  CHECK(env::run_command(run) == std::vector<std::string>{"podman",
                                                          "run",
                                                          "--rm",
                                                          "--init",
                                                          "--network",
                                                          "host",
                                                          "--shm-size",
                                                          "2g",
                                                          "--workdir",
                                                          "/ws/runs/r/wd",
                                                          "--name",
                                                          "amlrun-r",
                                                          "--user",
                                                          "1000:1000",
                                                          "--label",
                                                          "org.amlrun.run=r",
                                                          "--volume",
                                                          "/ws/runs/r/wd:/ws/runs/r/wd:rw",
                                                          "--volume",
                                                          "/ws/runs/r/inputs:/ws/runs/r/inputs:ro",
                                                          "--env",
                                                          "AMLRUN_RUN_ID",
                                                          "--env",
                                                          "RANK",
                                                          "amlrun-env:0123456789abcdef",
                                                          "bash",
                                                          "-c",
                                                          "python train.py"});
  // Several processes in one container: started idle (no --rm: whoever
  // ends it removes it), entered with exec.
  auto start = env::start_command(run);
  CHECK(std::vector<std::string>(start.begin(), start.begin() + 4) ==
        std::vector<std::string>{"podman", "run", "--detach", "--init"});
  CHECK(std::find(start.begin(), start.end(), "--rm") == start.end());
  CHECK(std::find(start.begin(), start.end(), "--env") == start.end());
  CHECK(std::vector<std::string>(start.end() - 4, start.end()) ==
        std::vector<std::string>{"amlrun-env:0123456789abcdef", "sh", "-c",
                                 "trap '' TERM INT HUP; exec sleep infinity"});
  CHECK(env::exec_command(run) ==
        std::vector<std::string>{"podman", "exec", "--workdir", "/ws/runs/r/wd", "--user",
                                 "1000:1000", "--env", "AMLRUN_RUN_ID", "--env", "RANK", "amlrun-r",
                                 "bash", "-c", "python train.py"});
  run.runtime = "apptainer";
  run.image = "/ws/environments/amlrun-env-0123456789abcdef.sif";
  run.gpu = true;
  CHECK(env::run_command(run) ==
        std::vector<std::string>{
            "apptainer", "exec", "--pwd", "/ws/runs/r/wd", "--nv", "--bind",
            "/ws/runs/r/wd:/ws/runs/r/wd:rw", "--bind", "/ws/runs/r/inputs:/ws/runs/r/inputs:ro",
            "/ws/environments/amlrun-env-0123456789abcdef.sif", "bash", "-c", "python train.py"});
  for (const char* name :
       {"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"}) {
    ::unsetenv(name);
  }
  ::setenv("https_proxy", "http://proxy.example:3128", 1);
  CHECK(env::build_command("docker", "/ctx", "0123456789abcdef0123", "/ws/environments") ==
        std::vector<std::string>{"docker", "build", "--network", "host", "--force-rm", "--tag",
                                 "amlrun-env:0123456789abcdef", "--build-arg", "https_proxy",
                                 "/ctx"});
  ::unsetenv("https_proxy");
  CHECK(env::build_command("apptainer", "/ctx", "0123456789abcdef0123", "/ws/environments") ==
        std::vector<std::string>{"apptainer", "build", "--fakeroot",
                                 "/ws/environments/amlrun-env-0123456789abcdef.sif",
                                 "/ctx/amlrun.def"});
}

TEST_CASE("the engine's socket is asked only where the docker client would use it") {
  // Another host, a context, a socket that is not there: the caller asks
  // the docker client instead (nothing is returned).
  ::unsetenv("DOCKER_CONTEXT");
  ::setenv("DOCKER_HOST", "tcp://127.0.0.1:2375", 1);
  CHECK_FALSE(env::docker_engine_status("/_ping").has_value());
  ::setenv("DOCKER_HOST", "unix:///nonexistent/amlrun-test.sock", 1);
  CHECK_FALSE(env::docker_engine_status("/_ping").has_value());
  ::unsetenv("DOCKER_HOST");
  ::setenv("DOCKER_CONTEXT", "elsewhere", 1);
  CHECK_FALSE(env::docker_engine_status("/_ping").has_value());
  ::unsetenv("DOCKER_CONTEXT");
}

TEST_CASE("a runtime that is not installed is reported as such") {
  auto probe = env::probe_runtime("amlrun-no-such-runtime");
  CHECK_FALSE(probe.works);
  CHECK(probe.detail == "not installed");
  CHECK(message_of([] { env::choose_runtime("amlrun-no-such-runtime"); }) ==
        "no container runtime can build or run images on this machine (amlrun-no-such-runtime: "
        "not installed); write the build context with 'amlrun env context' and build it where a "
        "runtime works");
}

TEST_CASE("an environment file hashes as the same environment written inline") {
  spec_test::JobDir dir;
  fs::create_directories(dir.path / "environments" / "conda");
  std::ofstream(dir.path / "environments" / "env.yml")
      << "$schema: https://azuremlschemas.azureedge.net/latest/environment.schema.json\n"
         "name: train-env\nversion: 1\nimage: python:3.11\nconda_file: conda/env.yml\n";
  std::ofstream(dir.path / "environments" / "conda" / "env.yml")
      << "channels: [conda-forge]\ndependencies: [python=3.11, {pip: [requests==2.31.0]}]\n";
  std::ofstream(dir.path / "inline-conda.yml")
      << "channels: [conda-forge]\ndependencies: [python=3.11, {pip: [requests==2.31.0]}]\n";
  std::string inline_hash = hash_of(
      dir, "command: x\nenvironment:\n  image: python:3.11\n  conda_file: inline-conda.yml\n");
  CHECK(hash_of(dir, "command: x\nenvironment: file:./environments/env.yml\n") == inline_hash);
  CHECK(hash_of(dir, "command: x\nenvironment: environments/env.yml\n") == inline_hash);
  // The file's content counts, as inline.
  std::ofstream(dir.path / "environments" / "conda" / "env.yml")
      << "channels: [conda-forge]\ndependencies: [python=3.11, {pip: [requests==2.32.0]}]\n";
  CHECK(hash_of(dir, "command: x\nenvironment: environments/env.yml\n") != inline_hash);
}
